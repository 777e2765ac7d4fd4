package sqldb

import (
	"fmt"
	"time"
)

// TimeLayout is how SQLite stores timestamps: fixed width, UTC and
// microsecond precision, so that text comparison orders them like time
// does and values match what PostgreSQL stores.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Time is how a query selects the timestamp column col for ScanTime. The
// SQLite driver turns a column declared as a timestamp into a time.Time by
// trying layouts in turn, the first of which never matches TimeLayout and
// allocates an error each time: on the busiest reads that was a large
// share of the work. Selected as text, the value is parsed by ScanTime in
// the one layout it is stored in. PostgreSQL sends timestamps in binary, so
// its column is selected as it is.
func (d Dialect) Time(col string) string {
	if d == SQLite {
		return "CAST(" + col + " AS TEXT)"
	}
	return col
}

// ScanTime returns a Scan destination that stores into t a timestamp
// selected with Dialect.Time, whichever engine returned it.
func ScanTime(t *time.Time) any { return (*timeDest)(t) }

type timeDest time.Time

// Scan implements sql.Scanner.
func (t *timeDest) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case time.Time:
		*t = timeDest(v)
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("sqldb: cannot scan %T into a timestamp", src)
	}
	parsed, err := ParseTime(s)
	if err != nil {
		return err
	}
	*t = timeDest(parsed)
	return nil
}

// ParseTime parses a timestamp stored as text: TimeLayout quickly, any other
// RFC 3339 form the slow way.
func ParseTime(s string) (time.Time, error) {
	if t, ok := parseLayout(s); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqldb: stored timestamp %q: %w", s, err)
	}
	return t.UTC(), nil
}

// parseLayout parses s if it is exactly in TimeLayout and denotes a real
// instant.
func parseLayout(s string) (time.Time, bool) {
	if len(s) != len(TimeLayout) {
		return time.Time{}, false
	}
	for i := range len(TimeLayout) {
		switch TimeLayout[i] {
		case '-', 'T', ':', '.', 'Z':
			if s[i] != TimeLayout[i] {
				return time.Time{}, false
			}
		default:
			if s[i] < '0' || s[i] > '9' {
				return time.Time{}, false
			}
		}
	}
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	year, month, day := num(0, 4), time.Month(num(5, 7)), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	if month < time.January || month > time.December || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, month, day, hour, minute, sec, num(20, 26)*1000, time.UTC)
	// time.Date carries an impossible day into the next month instead of
	// refusing it.
	if t.Day() != day {
		return time.Time{}, false
	}
	return t, true
}

// ScanNullTime is ScanTime for a nullable column: NULL scans as the zero
// time.
func ScanNullTime(t *time.Time) any { return (*nullTimeDest)(t) }

type nullTimeDest time.Time

func (t *nullTimeDest) Scan(src any) error {
	if src == nil {
		*t = nullTimeDest{}
		return nil
	}
	return (*timeDest)(t).Scan(src)
}
