package account_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tenantry/tenantry/account"
)

// Ensure common user agents get the label their owners would recognise.
func TestDevice(t *testing.T) {
	t.Parallel()
	tests := []struct{ ua, want string }{
		{"", "Unknown device"},
		{"   ", "Unknown device"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox on Linux"},
		{"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0", "Firefox on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "Chrome on Windows"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91", "Edge on Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0", "Opera on macOS"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1", "Chrome on iPad"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36", "Chrome on Android"},
		{"Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "Chrome on ChromeOS"},
		{"Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer on Windows"},
		{"Mozilla/5.0 (Linux; Android 14)", "Android device"},
		{"curl/8.5.0", "curl"},
		{"Wget/1.21.4", "Wget"},
		{"python-requests/2.31.0", "Python requests"},
		{"Go-http-client/1.1", "Go HTTP client"},
		{"PostmanRuntime/7.36.0", "Postman"},
		{"HTTPie/3.2.2", "HTTPie"},
		{"MyApp/2.1 (build 7)", "MyApp"},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Unknown device"},
		{"\x01\x02/3", "Unknown device"},
		{"<script>alert(1)</script>", "scriptalert1"},
	}
	for _, tt := range tests {
		if got := account.Device(tt.ua); got != tt.want {
			t.Errorf("Device(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

// Ensure any user agent gets a short, printable label.
func FuzzDevice(f *testing.F) {
	for _, ua := range []string{"", "curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0", "Ünïcødé/1 ✓", strings.Repeat("a", 600)} {
		f.Add(ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		got := account.Device(ua)
		if got == "" || len(got) > 64 || !utf8.ValidString(got) {
			t.Fatalf("Device(%q) = %q", ua, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("Device(%q) = %q holds a control character", ua, got)
			}
		}
	})
}
