package account

import (
	"strings"
	"unicode"
)

// unknownDevice labels a session whose user agent says nothing usable.
const unknownDevice = "Unknown device"

// maxDeviceLen bounds a label taken from an unrecognised user agent's own
// product name.
const maxDeviceLen = 40

// marker is a substring of user agents and what it reveals.
type marker struct{ token, name string }

// Browsers, in the order they must be tried: most browsers claim to be the
// ones they derive from (Edge says Chrome and Safari, Chrome says Safari),
// so the more specific come first.
var browsers = []marker{ //nolint:gochecknoglobals // read-only table
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"Edge/", "Edge"},
	{"OPR/", "Opera"}, {"Opera", "Opera"},
	{"SamsungBrowser/", "Samsung Internet"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
	{"Safari/", "Safari"},
	{"MSIE ", "Internet Explorer"}, {"Trident/", "Internet Explorer"},
}

// Operating systems, likewise: iPads and iPhones say "like Mac OS X",
// Android says Linux.
var systems = []marker{ //nolint:gochecknoglobals // read-only table
	{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"CrOS", "ChromeOS"},
	{"Windows", "Windows"}, {"Macintosh", "macOS"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
}

// Tools and libraries whose user agent starts with their name.
var tools = []marker{ //nolint:gochecknoglobals // read-only table
	{"curl/", "curl"}, {"wget/", "Wget"}, {"httpie/", "HTTPie"}, {"python-requests/", "Python requests"},
	{"python-urllib/", "Python urllib"}, {"python-httpx/", "Python httpx"}, {"go-http-client/", "Go HTTP client"},
	{"postmanruntime/", "Postman"}, {"okhttp/", "OkHttp"}, {"axios/", "axios"}, {"node-fetch/", "Node.js"},
	{"insomnia/", "Insomnia"}, {"java/", "Java"},
}

// Device returns a short human label for a user agent, such as "Firefox on
// Linux", "Safari on iPhone" or "curl": enough for someone to recognise
// their sessions, never a promise of what the client really is (anyone
// can send any user agent).
func Device(userAgent string) string {
	ua := strings.TrimSpace(userAgent)
	if ua == "" {
		return unknownDevice
	}
	lower := strings.ToLower(ua)
	for _, t := range tools {
		if strings.HasPrefix(lower, t.token) {
			return t.name
		}
	}
	browser, system := find(ua, browsers), find(ua, systems)
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return system + " device"
	}
	return product(ua)
}

func find(ua string, table []marker) string {
	for _, m := range table {
		if strings.Contains(ua, m.token) {
			return m.name
		}
	}
	return ""
}

// product returns the name an unrecognised user agent starts with ("MyApp"
// of "MyApp/2.1 (build 7)"), kept to letters, digits and a few separators,
// or unknownDevice when it has none.
func product(ua string) string {
	name, _, _ := strings.Cut(ua, "/")
	name, _, _ = strings.Cut(name, " ")
	var b strings.Builder
	for _, r := range name {
		if b.Len() >= maxDeviceLen {
			break
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 || name == "Mozilla" {
		return unknownDevice
	}
	return b.String()
}
