package sqldb_test

import (
	"testing"
	"time"

	"github.com/tenantry/tenantry/sqldb"
)

func TestParseTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"2026-11-22T12:36:42.960170Z", time.Date(2026, 11, 22, 12, 36, 42, 960170000, time.UTC)},
		{"2024-02-29T23:59:59.999999Z", time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC)},
		{"0001-01-01T00:00:00.000000Z", time.Time{}},
		// Other RFC 3339 forms, such as a value written by hand, still read.
		{"2026-11-22T13:36:42+01:00", time.Date(2026, 11, 22, 12, 36, 42, 0, time.UTC)},
		{"2026-11-22T12:36:42.5Z", time.Date(2026, 11, 22, 12, 36, 42, 500000000, time.UTC)},
	} {
		got, err := sqldb.ParseTime(c.in)
		if err != nil || !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v in UTC", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", "2026-11-22", "2025-02-29T00:00:00.000000Z", "2026-04-31T00:00:00.000000Z",
		"2026-13-01T00:00:00.000000Z", "2026-00-01T00:00:00.000000Z", "2026-11-22T24:00:00.000000Z",
		"2026-11-22T12:60:00.000000Z", "2026-11-22T12:00:60.000000Z", "2026-11-22 12:36:42.960170Z",
		"2026-11-22T12:36:42.96017xZ", "2026-11-2xT12:36:42.960170Z", "+026-11-22T12:36:42.960170Z",
	} {
		if got, err := sqldb.ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
		}
	}
}

func TestScanTime(t *testing.T) {
	want := time.Date(2026, 11, 22, 12, 36, 42, 960170000, time.UTC)
	for _, src := range []any{want, "2026-11-22T12:36:42.960170Z", []byte("2026-11-22T12:36:42.960170Z")} {
		var got time.Time
		if err := sqldb.ScanTime(&got).(interface{ Scan(any) error }).Scan(src); err != nil || !got.Equal(want) {
			t.Errorf("scan %T: %v, %v; want %v", src, got, err, want)
		}
	}
	for _, src := range []any{nil, int64(1), "not a time"} {
		var got time.Time
		if err := sqldb.ScanTime(&got).(interface{ Scan(any) error }).Scan(src); err == nil {
			t.Errorf("scan %#v: no error", src)
		}
	}
}

// FuzzParseTime checks the fast path against the standard library: whatever
// time.Parse reads in the stored layout, ParseTime reads the same, and
// ParseTime accepts nothing in that length that time.Parse refuses in any
// RFC 3339 form.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-22T12:36:42.960170Z", "2024-02-29T00:00:00.000000Z", "2025-02-29T00:00:00.000000Z",
		"9999-12-31T23:59:59.999999Z", "2026-11-22T12:36:42+01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := sqldb.ParseTime(s)
		want, werr := time.Parse(sqldb.TimeLayout, s)
		if werr == nil && (err != nil || !got.Equal(want)) {
			t.Fatalf("ParseTime(%q) = %v, %v; time.Parse reads %v", s, got, err, want)
		}
		if err == nil {
			if _, rerr := time.Parse(time.RFC3339Nano, s); rerr != nil {
				t.Fatalf("ParseTime(%q) = %v, but it is not RFC 3339: %v", s, got, rerr)
			}
		}
	})
}

func BenchmarkParseTime(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sqldb.ParseTime("2026-11-22T12:36:42.960170Z"); err != nil {
			b.Fatal(err)
		}
	}
}
