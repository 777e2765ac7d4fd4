package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tenantry/tenantry/sqldb"
)

// clause builds the conditions of a WHERE clause and their arguments, in
// one query text for both engines.
type clause struct {
	conds []string
	args  []any
}

// arg binds v and returns its placeholder.
func (c *clause) arg(v any) string {
	c.args = append(c.args, v)
	return "$" + strconv.Itoa(len(c.args))
}

// list binds each of vs and returns their placeholders in parentheses.
func (c *clause) list(vs []string) string {
	ps := make([]string, len(vs))
	for i, v := range vs {
		ps[i] = c.arg(v)
	}
	return "(" + strings.Join(ps, ", ") + ")"
}

func (c *clause) and(cond string) { c.conds = append(c.conds, cond) }

func (c *clause) String() string {
	if len(c.conds) == 0 {
		return "TRUE"
	}
	return strings.Join(c.conds, " AND ")
}

// where adds f's conditions, all but its paging, to c.
func (f *Filter) where(c *clause) {
	if f.ActorID != "" {
		c.and("actor_id = " + c.arg(f.ActorID))
	}
	if f.Subject != "" {
		p := c.arg(f.Subject)
		c.and("(actor_id = " + p + " OR (target_type = 'user' AND target_id = " + p + "))")
	}
	if f.Action != "" {
		c.and("action = " + c.arg(f.Action))
	}
	var actions []string
	if len(f.Actions) > 0 {
		actions = append(actions, "action IN "+c.list(f.Actions))
	}
	if len(f.FailedActions) > 0 {
		actions = append(actions, "(action IN "+c.list(f.FailedActions)+" AND outcome <> "+c.arg(OutcomeSuccess)+")")
	}
	if len(actions) > 0 {
		c.and("(" + strings.Join(actions, " OR ") + ")")
	}
	if !f.From.IsZero() {
		c.and("occurred_at >= " + c.arg(f.From.UTC()))
	}
	if !f.To.IsZero() {
		c.and("occurred_at < " + c.arg(f.To.UTC()))
	}
}

// pages returns f's page, from 1, and its size.
func (f *Filter) pages() (page, perPage int) {
	page, perPage = max(f.Page, 1), f.PerPage
	if perPage <= 0 {
		perPage = defaultPerPage
	}
	return page, perPage
}

// ListSubject returns one page of the entries of every chain that concern
// f.Subject and match the rest of f, newest first by time, and how many
// match. A user's own history spans the platform chain (sign-ins, account
// changes) and tenants' (single sign-on into each), which no one chain's
// order covers, so it pages by number only: BeforeSeq is refused.
func (l *Log) ListSubject(ctx context.Context, f Filter) (*Listing, error) {
	if f.Subject == "" || f.BeforeSeq > 0 {
		return nil, errors.New("audit: a listing across chains needs a subject and pages by number")
	}
	c := &clause{}
	f.where(c)
	page, perPage := f.pages()
	out := &Listing{Entries: []Entry{}}
	if err := l.db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE `+c.String(), c.args...).Scan(&out.Total); err != nil {
		return nil, fmt.Errorf("count audit entries: %w", err)
	}
	offset := (page - 1) * perPage
	if out.Total == 0 || int64(offset) >= out.Total {
		return out, nil
	}
	where, off := c.String(), c.arg(offset)
	entries, err := scanEntries(l.db.Query(ctx, `SELECT `+entryColumns+` FROM audit_log WHERE `+where+`
		ORDER BY occurred_at DESC, chain, seq DESC `+sqldb.Limit(perPage)+` OFFSET `+off, c.args...))
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	if entries != nil {
		out.Entries = entries
	}
	return out, nil
}
