// Package audit keeps tenantry's tamper-evident audit trail. Entries are
// append-only and hash-chained: each tenant has a chain of its own, named by
// the tenant id, and events tied to no tenant go into the platform chain.
// Every entry's hash covers its own fields and the hash of the entry before
// it, and each chain's head records its last entry, so that editing,
// deleting, inserting or reordering entries, or cutting a chain short, is
// found by Verify.
//
// The package also carries a Record in a request's context, through which
// services add what only they know (before and after values, the user a
// login was for, the tenant a new resource belongs to) to the entry the HTTP
// layer writes for the request, without importing anything of HTTP.
package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
)

// PlatformChain is the chain of events not tied to one tenant; tenant
// chains are named by tenant id.
const PlatformChain = "platform"

// Outcomes of an audited action.
const (
	// OutcomeSuccess is an action that was carried out.
	OutcomeSuccess = "success"
	// OutcomeFailure is an action refused for bad input or a conflict (a
	// client error other than an authorization one).
	OutcomeFailure = "failure"
	// OutcomeDenied is an action refused because the caller is not
	// authenticated or not allowed.
	OutcomeDenied = "denied"
	// OutcomeError is an action that failed on the server's side.
	OutcomeError = "error"
)

// GenesisHash is the prev_hash of the first entry of every chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// timeLayout is the form of occurred_at the hash covers: the one the SQLite
// engine stores, and what PostgreSQL's microsecond timestamps print as in
// UTC, so a hash recomputes from the rows of either engine.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Limits on stored values, in bytes. Longer values (a pathological user
// agent, a probed path parameter) are cut, before hashing, rather than
// refused: losing the entry would be worse than shortening it.
const (
	maxIDLen        = 64
	maxShortLen     = 128
	maxTargetLen    = 255
	maxUserAgentLen = 512
	maxDetailsLen   = 64 << 10
)

// Entry is one event of the audit trail.
type Entry struct {
	ID         string
	Chain      string
	Seq        int64
	OccurredAt time.Time
	// ActorID is the user who acted, "" when unknown (a failed login for
	// an unknown email, say).
	ActorID string
	// Action is a stable dotted name: "auth.login",
	// "tenant.member.role_change", "document.upload".
	Action     string
	TargetType string
	TargetID   string
	// Outcome is one of the Outcome constants.
	Outcome   string
	ClientIP  string
	UserAgent string
	RequestID string
	// Details is a JSON object: the response status, the error code of a
	// failure, before and after values and whatever services annotated.
	Details  json.RawMessage
	PrevHash string
	Hash     string
}

// Filter narrows and pages a listing. Zero values filter nothing; From is
// inclusive and To exclusive.
type Filter struct {
	ActorID string
	// Subject keeps the entries that concern one user: those the user
	// acted in, and those whose target is the user's account.
	Subject string
	Action  string
	// Actions and FailedActions, when either is set, keep only the
	// entries of those actions, those of FailedActions only when they did
	// not succeed (a refused refresh, not the routine ones).
	Actions       []string
	FailedActions []string
	From          time.Time
	To            time.Time
	// Page counts from 1; PerPage defaults to 20.
	Page    int
	PerPage int
	// BeforeSeq, when positive, continues a walk: the page is the entries
	// just older than the one at this position, found through the chain's
	// (chain, seq) indexes however deep, Page skips nothing and the
	// matching entries are not counted.
	BeforeSeq int64
}

// Listing is a page of a chain's entries.
type Listing struct {
	Entries []Entry
	// Total is how many entries match, or -1 when the listing continued a
	// walk (Filter.BeforeSeq) and did not count them.
	Total int64
	// NextBeforeSeq is the BeforeSeq of the following page, 0 on the last
	// page.
	NextBeforeSeq int64
}

// Verification is the result of checking one chain.
type Verification struct {
	Chain   string
	Entries int64
	Intact  bool
	// FirstBroken is the first entry found wrong, nil for an intact chain.
	FirstBroken *Broken
}

// Broken names where a chain stops being trustworthy and why. ID is empty
// when the entry at Seq is missing altogether (the end of the chain was
// deleted).
type Broken struct {
	Seq    int64
	ID     string
	Reason string
}

// Log reads and appends audit entries in the control database.
type Log struct {
	db     sqldb.DB
	key    []byte
	logger *slog.Logger
}

// NewLog returns a Log over the control database. key signs chain heads; it
// must not be stored in the database, and must be the same for every
// process and for verification (tenantry derives it from JWT_SECRET_KEY).
// Every append also records an audit.log event in the control outbox.
func NewLog(db sqldb.DB, key []byte, logger *slog.Logger) *Log {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Log{db: db, key: key, logger: logger}
}

// headMAC signs a chain head: whoever rewrites entries and recomputes their
// hashes must also produce this, which takes the key.
func (l *Log) headMAC(chain string, seq int64, hash string) string {
	mac := hmac.New(sha256.New, l.key)
	mac.Write([]byte(chain + "\n" + strconv.FormatInt(seq, 10) + "\n" + hash))
	return hex.EncodeToString(mac.Sum(nil))
}

const entryColumns = `id, chain, seq, occurred_at, actor_id, action, target_type, target_id, outcome,
	client_ip, user_agent, request_id, details, prev_hash, hash`

// Append adds e at the end of its chain. It fills in ID (when empty), Seq,
// OccurredAt (when zero), PrevHash and Hash, and stores values cut to their
// limits and details in compact form, exactly as hashed. Concurrent appends
// to one chain, from any number of processes, queue on the chain's head row.
func (l *Log) Append(ctx context.Context, e *Entry) error {
	var n Entry
	err := l.db.InTx(ctx, func(tx sqldb.Tx) error {
		var err error
		n, err = l.appendTx(ctx, tx, *e)
		return err
	})
	if err != nil {
		return err
	}
	*e = n
	return nil
}

// AppendTx is Append in tx, a transaction of the control database, so that
// the entry is written if and only if the change it records commits.
func (l *Log) AppendTx(ctx context.Context, tx sqldb.Tx, e *Entry) error {
	n, err := l.appendTx(ctx, tx, *e)
	if err != nil {
		return err
	}
	*e = n
	return nil
}

func (l *Log) appendTx(ctx context.Context, tx sqldb.Tx, e Entry) (Entry, error) {
	n, err := normalize(e)
	if err != nil {
		return n, err
	}
	err = func() error {
		if _, err := tx.Exec(ctx, `INSERT INTO audit_chains (chain, last_seq, last_hash, head_mac) VALUES ($1, 0, $2, $3)
			ON CONFLICT (chain) DO NOTHING`, n.Chain, GenesisHash, l.headMAC(n.Chain, 0, GenesisHash)); err != nil {
			return err
		}
		// The no-op update takes the head's row lock on PostgreSQL, held
		// until commit, and RETURNING reads the head as it stands once the
		// lock is ours. SQLite transactions already hold the one write
		// lock from BEGIN.
		var lastSeq int64
		var lastHash string
		if err := tx.QueryRow(ctx, `UPDATE audit_chains SET last_seq = last_seq WHERE chain = $1
			RETURNING last_seq, last_hash`, n.Chain).Scan(&lastSeq, &lastHash); err != nil {
			return err
		}
		n.Seq, n.PrevHash = lastSeq+1, lastHash
		if n.OccurredAt.IsZero() {
			// Stamped under the lock, so that time never runs backwards
			// along a chain written by one clock.
			n.OccurredAt = sqldb.Now()
		}
		n.Hash = hashEntry(&n)
		if _, err := tx.Exec(ctx, `INSERT INTO audit_log (`+entryColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			n.ID, n.Chain, n.Seq, n.OccurredAt, n.ActorID, n.Action, n.TargetType, n.TargetID, n.Outcome,
			n.ClientIP, n.UserAgent, n.RequestID, string(n.Details), n.PrevHash, n.Hash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_chains SET last_seq = $2, last_hash = $3, head_mac = $4 WHERE chain = $1`,
			n.Chain, n.Seq, n.Hash, l.headMAC(n.Chain, n.Seq, n.Hash)); err != nil {
			return err
		}
		return l.emit(ctx, tx, &n)
	}()
	if err != nil {
		return n, fmt.Errorf("append audit entry to chain %s: %w", n.Chain, err)
	}
	return n, nil
}

// emit records the entry as an audit.log event, in the transaction that
// appends it.
func (l *Log) emit(ctx context.Context, tx sqldb.Tx, e *Entry) error {
	// Tenant chains are named by tenant id; the event names the tenant only
	// then (the chain itself is in the data either way).
	tenantID := ""
	if _, err := uuid.Parse(e.Chain); err == nil {
		tenantID = e.Chain
	}
	return outbox.EmitPlatform(ctx, tx, tenantry.EventAuditLog, tenantID, e.ActorID, map[string]any{
		"id": e.ID, "chain": e.Chain, "seq": e.Seq, "occurred_at": e.OccurredAt, "actor_id": e.ActorID,
		"action": e.Action, "target_type": e.TargetType, "target_id": e.TargetID, "outcome": e.Outcome,
		"client_ip": e.ClientIP, "user_agent": e.UserAgent, "request_id": e.RequestID, "details": e.Details,
		"hash": e.Hash,
	})
}

// normalize validates an entry and brings every value to the form it is
// stored and hashed in.
func normalize(e Entry) (Entry, error) {
	e.ID = clean(e.ID, maxIDLen)
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	e.Chain = clean(e.Chain, maxIDLen)
	e.Action = clean(e.Action, maxShortLen)
	if e.Chain == "" || e.Action == "" {
		return e, errors.New("audit entry needs a chain and an action")
	}
	if !validOutcome(e.Outcome) {
		return e, fmt.Errorf("audit entry has an unknown outcome %q", e.Outcome)
	}
	if !e.OccurredAt.IsZero() {
		e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
	}
	e.ActorID = clean(e.ActorID, maxTargetLen)
	e.TargetType = clean(e.TargetType, maxShortLen)
	e.TargetID = clean(e.TargetID, maxTargetLen)
	e.ClientIP = clean(e.ClientIP, maxShortLen)
	e.UserAgent = clean(e.UserAgent, maxUserAgentLen)
	e.RequestID = clean(e.RequestID, maxShortLen)
	details, err := compactObject(e.Details)
	if err != nil {
		return e, err
	}
	e.Details = details
	return e, nil
}

func validOutcome(o string) bool {
	switch o {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied, OutcomeError:
		return true
	}
	return false
}

// clean makes s storable in a text column of either engine (valid UTF-8,
// no NUL, which PostgreSQL refuses) and at most max bytes long, cut on a
// character boundary.
func clean(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// compactObject checks that details is a JSON object and returns it without
// insignificant space; empty details are {}.
func compactObject(details json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(details)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return json.RawMessage("{}"), nil
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, errors.New("audit entry details must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, fmt.Errorf("audit entry details: %w", err)
	}
	if buf.Len() > maxDetailsLen {
		// The entry matters more than its annotations.
		return json.RawMessage(`{"details_dropped":"larger than ` + strconv.Itoa(maxDetailsLen) + ` bytes"}`), nil
	}
	return buf.Bytes(), nil
}

// hashEntry computes an entry's hash from its stored values:
//
//	hex(SHA-256(prev_hash + "\n" + canonical))
//
// where canonical is, for each field in the fixed order id, chain, seq,
// occurred_at, actor_id, action, target_type, target_id, outcome, client_ip,
// user_agent, request_id, details, the line name "=" length ":" value "\n",
// length being the value's size in bytes in decimal, seq in decimal and
// occurred_at as 2006-01-02T15:04:05.000000Z in UTC. The length prefixes
// keep values from running into each other, so that no two different
// entries share an encoding.
func hashEntry(e *Entry) string {
	var b bytes.Buffer
	b.WriteString(e.PrevHash)
	b.WriteByte('\n')
	field := func(name, value string) {
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(len(value)))
		b.WriteByte(':')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	field("id", e.ID)
	field("chain", e.Chain)
	field("seq", strconv.FormatInt(e.Seq, 10))
	field("occurred_at", e.OccurredAt.UTC().Format(timeLayout))
	field("actor_id", e.ActorID)
	field("action", e.Action)
	field("target_type", e.TargetType)
	field("target_id", e.TargetID)
	field("outcome", e.Outcome)
	field("client_ip", e.ClientIP)
	field("user_agent", e.UserAgent)
	field("request_id", e.RequestID)
	field("details", string(e.Details))
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:])
}

func scanEntry(row sqldb.Row) (Entry, error) {
	var e Entry
	var details string
	err := row.Scan(&e.ID, &e.Chain, &e.Seq, &e.OccurredAt, &e.ActorID, &e.Action, &e.TargetType, &e.TargetID,
		&e.Outcome, &e.ClientIP, &e.UserAgent, &e.RequestID, &details, &e.PrevHash, &e.Hash)
	e.OccurredAt = e.OccurredAt.UTC()
	e.Details = json.RawMessage(details)
	return e, err
}

func scanEntries(rows sqldb.Rows, err error) ([]Entry, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// defaultPerPage is the page size of a listing that names none.
const defaultPerPage = 20

// List returns one page of a chain's entries matching f, newest first, and
// how many entries match in all.
func (l *Log) List(ctx context.Context, chain string, f Filter) ([]Entry, int64, error) {
	page, err := l.ListPage(ctx, chain, f)
	if err != nil {
		return nil, 0, err
	}
	return page.Entries, page.Total, nil
}

// ListPage returns one page of a chain's entries matching f, newest first,
// with where the next page starts. A first page (no BeforeSeq) counts the
// matching entries; a page that continues a walk does not, since counting
// reads every matching index entry and would make each deep page cost what
// the whole chain does.
func (l *Log) ListPage(ctx context.Context, chain string, f Filter) (*Listing, error) {
	c := &clause{}
	c.and("chain = " + c.arg(chain))
	f.where(c)
	page, perPage := f.pages()
	out := &Listing{Entries: []Entry{}, Total: -1}
	offset := 0
	if f.BeforeSeq > 0 {
		c.and("seq < " + c.arg(f.BeforeSeq))
	} else {
		if err := l.db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE `+c.String(), c.args...).Scan(&out.Total); err != nil {
			return nil, fmt.Errorf("count audit entries: %w", err)
		}
		offset = (page - 1) * perPage
		if out.Total == 0 || int64(offset) >= out.Total {
			return out, nil
		}
	}
	where, off := c.String(), c.arg(offset)
	// One entry more than the page says whether another page follows.
	entries, err := scanEntries(l.db.Query(ctx, `SELECT `+entryColumns+` FROM audit_log WHERE `+where+`
		ORDER BY seq DESC `+sqldb.Limit(perPage+1)+` OFFSET `+off, c.args...))
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	if len(entries) > perPage {
		entries = entries[:perPage]
		out.NextBeforeSeq = entries[perPage-1].Seq
	}
	if entries != nil {
		out.Entries = entries
	}
	return out, nil
}

// Chains returns the name of every chain, the platform chain first and
// tenant chains in order. A chain whose head row is gone is still listed,
// from its entries, so that verifying every chain finds it.
func (l *Log) Chains(ctx context.Context) ([]string, error) {
	rows, err := l.db.Query(ctx, `SELECT chain FROM audit_chains UNION SELECT chain FROM audit_log`)
	if err != nil {
		return nil, fmt.Errorf("list audit chains: %w", err)
	}
	defer rows.Close()
	var chains []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("list audit chains: %w", err)
		}
		chains = append(chains, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit chains: %w", err)
	}
	slices.SortFunc(chains, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == PlatformChain:
			return -1
		case b == PlatformChain:
			return 1
		}
		return strings.Compare(a, b)
	})
	return chains, nil
}

// verifyPage is how many entries Verify reads at a time, which bounds its
// memory whatever the length of the chain.
const verifyPage = 500

// chainWalk is the state of a verification between entries.
type chainWalk struct {
	v        *Verification
	lastSeq  int64
	lastID   string
	lastHash string
}

func (w *chainWalk) broken(seq int64, id, reason string) {
	if w.v.FirstBroken == nil {
		w.v.Intact = false
		w.v.FirstBroken = &Broken{Seq: seq, ID: id, Reason: reason}
	}
}

// check verifies one entry against itself and against the entry before it.
func (w *chainWalk) check(e *Entry) {
	w.v.Entries++
	switch {
	case hashEntry(e) != e.Hash:
		w.broken(e.Seq, e.ID, "the entry's hash does not match its contents: the entry was altered")
	case e.Seq != w.lastSeq+1 && w.lastSeq == 0:
		w.broken(e.Seq, e.ID, fmt.Sprintf("the chain starts at seq %d: the entries before it were deleted", e.Seq))
	case e.Seq != w.lastSeq+1:
		w.broken(e.Seq, e.ID, fmt.Sprintf("seq %d follows seq %d: the entries between them were deleted", e.Seq, w.lastSeq))
	case e.PrevHash != w.lastHash:
		w.broken(e.Seq, e.ID, "prev_hash is not the hash of the entry before it: entries were replaced, inserted or reordered")
	}
	w.lastSeq, w.lastID, w.lastHash = e.Seq, e.ID, e.Hash
}

// walk checks the chain's entries after seq `after`, in order, and returns
// how many it read.
func (l *Log) walk(ctx context.Context, chain string, w *chainWalk) (int64, error) {
	var read int64
	for {
		page, err := scanEntries(l.db.Query(ctx, `SELECT `+entryColumns+` FROM audit_log
			WHERE chain = $1 AND seq > $2 ORDER BY seq `+sqldb.Limit(verifyPage), chain, w.lastSeq))
		if err != nil {
			return read, err
		}
		for i := range page {
			w.check(&page[i])
		}
		read += int64(len(page))
		if len(page) < verifyPage {
			return read, nil
		}
	}
}

// Verify walks a chain in seq order and reports the first entry whose hash
// does not recompute (edited), whose seq does not follow the one before it
// (entries deleted) or whose prev_hash is not the previous entry's hash
// (replaced or reordered), and a head that does not match the last entry
// (the end of the chain deleted). A chain with no entries is intact.
func (l *Log) Verify(ctx context.Context, chain string) (*Verification, error) {
	v := &Verification{Chain: chain, Intact: true}
	w := &chainWalk{v: v, lastHash: GenesisHash}
	if _, err := l.walk(ctx, chain, w); err != nil {
		return nil, fmt.Errorf("verify audit chain %s: %w", chain, err)
	}
	// The head is read after the entries: an append commits its entry and
	// the head together, so a head ahead of the last entry read is either
	// an append that landed meanwhile, read by walking on, or deletion.
	for {
		var headSeq int64
		var headHash, headMAC string
		err := l.db.QueryRow(ctx, `SELECT last_seq, last_hash, head_mac FROM audit_chains WHERE chain = $1`, chain).Scan(&headSeq, &headHash, &headMAC)
		if errors.Is(err, sqldb.ErrNoRows) {
			if v.Entries > 0 {
				w.broken(w.lastSeq, w.lastID, "the chain has no head record: it was deleted")
			}
			break
		} else if err != nil {
			return nil, fmt.Errorf("verify audit chain %s: %w", chain, err)
		}
		if headSeq > w.lastSeq {
			n, err := l.walk(ctx, chain, w)
			if err != nil {
				return nil, fmt.Errorf("verify audit chain %s: %w", chain, err)
			}
			if n > 0 {
				continue
			}
			w.broken(w.lastSeq+1, "", fmt.Sprintf("the chain head records seq %d but the chain ends at seq %d: the entries after it were deleted", headSeq, w.lastSeq))
		} else if headSeq < w.lastSeq {
			var seq int64
			var id string
			if err := l.db.QueryRow(ctx, `SELECT seq, id FROM audit_log WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT 1`,
				chain, headSeq).Scan(&seq, &id); err != nil {
				return nil, fmt.Errorf("verify audit chain %s: %w", chain, err)
			}
			w.broken(seq, id, fmt.Sprintf("the chain head records seq %d but entries go on to seq %d: entries were added behind the head's back", headSeq, w.lastSeq))
		} else if headHash != w.lastHash {
			w.broken(w.lastSeq, w.lastID, "the chain head's hash is not the last entry's: the last entry was replaced")
		} else if !hmac.Equal([]byte(headMAC), []byte(l.headMAC(chain, headSeq, headHash))) {
			w.broken(w.lastSeq, w.lastID, "the chain head's signature is invalid: the chain was rewritten without the audit key")
		}
		break
	}
	if b := v.FirstBroken; b != nil {
		l.logger.ErrorContext(ctx, "audit chain broken", "chain", chain, "seq", b.Seq, "entry_id", b.ID, "reason", b.Reason)
	}
	return v, nil
}
