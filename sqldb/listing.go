package sqldb

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Where gathers the conditions of a filtered listing and the arguments
// they bind, so that its count and its page share one WHERE clause.
type Where struct {
	conds []string
	// Args are the arguments bound so far, in placeholder order.
	Args []any
}

// Add appends a condition whose %d verbs all stand for one new argument,
// v, numbered after those already bound.
func (w *Where) Add(cond string, v any) {
	w.Args = append(w.Args, v)
	n := len(w.Args)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "%d", fmt.Sprint(n)))
}

// Is appends a condition that binds nothing.
func (w *Where) Is(cond string) { w.conds = append(w.conds, cond) }

// String renders the conditions joined by AND, or a condition always true.
func (w *Where) String() string {
	if len(w.conds) == 0 {
		return "1 = 1"
	}
	return strings.Join(w.conds, " AND ")
}

// Page renders the LIMIT and OFFSET of page (from 1) of perPage rows, with
// the numbers written in, as Limit does.
func Page(page, perPage int) string {
	return fmt.Sprintf("%s OFFSET %d", Limit(perPage), (max(page, 1)-1)*perPage)
}

// ContainsLower is a condition that the text column col contains, in
// any case, the pattern bound to the placeholder param, which Contains
// makes. Both sides are lower-cased by the engine, so that they are
// lower-cased alike: PostgreSQL folds every letter, SQLite only ASCII
// ones (others then match in their own case only).
func ContainsLower(col, param string) string {
	return `LOWER(` + col + `) LIKE LOWER(CAST(` + param + ` AS TEXT)) ESCAPE '\'`
}

// Contains returns the pattern of ContainsLower for text containing s: %
// and _ in s match themselves.
func Contains(s string) string {
	return "%" + likeEscaper.Replace(s) + "%"
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`) //nolint:gochecknoglobals // stateless

// DayCount is how many rows fall on one UTC day.
type DayCount struct {
	// Date is the day, as YYYY-MM-DD.
	Date  string
	Count int64
}

// CountByDay counts the timestamps a query selects (one column, selected
// with Dialect.Time) by UTC day, oldest day first; days without any are
// left out. Counting here rather than in SQL keeps one query text for both
// engines, which group dates differently.
func CountByDay(ctx context.Context, q Querier, query string, args ...any) ([]DayCount, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[string]int64{}
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(ScanTime(&t)); err != nil {
			return nil, err
		}
		counts[t.UTC().Format(time.DateOnly)]++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]DayCount, 0, len(counts))
	for d, n := range counts {
		out = append(out, DayCount{Date: d, Count: n})
	}
	// ISO dates sort as text in time order.
	slices.SortFunc(out, func(a, b DayCount) int { return strings.Compare(a.Date, b.Date) })
	return out, nil
}
