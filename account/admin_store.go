package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// adminUserColumns are userColumns, selected for ScanTime, with the end of
// the lockout in force at the time bound to the placeholder now.
func adminUserColumns(d sqldb.Dialect, now string) string {
	return `id, email, first_name, last_name, is_active, is_platform_admin, email_verified_at IS NOT NULL, locale, ` +
		d.Time("created_at") + `, ` + d.Time("updated_at") + `,
		(SELECT ` + d.Time("f.locked_until") + ` FROM login_failures f WHERE f.email = users.email AND f.locked_until > ` + now + `)`
}

func adminUserDest(u *AdminUser) []any {
	return []any{&u.ID, &u.Email, &u.FirstName, &u.LastName, &u.IsActive, &u.PlatformAdmin, &u.EmailVerified, &u.Locale,
		sqldb.ScanTime(&u.CreatedAt), sqldb.ScanTime(&u.UpdatedAt), sqldb.ScanNullTime(&u.LockedUntil)}
}

func listUsers(ctx context.Context, q sqldb.Querier, f UserFilter, now time.Time) ([]AdminUser, int64, error) {
	var w sqldb.Where
	if f.Search != "" {
		w.Add(`(`+sqldb.ContainsLower("email", "$%d")+` OR `+sqldb.ContainsLower("first_name", "$%d")+
			` OR `+sqldb.ContainsLower("last_name", "$%d")+`)`, sqldb.Contains(f.Search))
	}
	if f.Active != nil {
		w.Add(`is_active = $%d`, *f.Active)
	}
	var total int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM users WHERE `+w.String(), w.Args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	args := append(w.Args, now)
	rows, err := q.Query(ctx, `SELECT `+adminUserColumns(q.Dialect(), fmt.Sprintf("$%d", len(args)))+` FROM users WHERE `+w.String()+
		` ORDER BY created_at DESC, id `+sqldb.Page(f.Page, f.PerPage), args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []AdminUser{}
	for rows.Next() {
		var u AdminUser
		if err := rows.Scan(adminUserDest(&u)...); err != nil {
			return nil, 0, err
		}
		out = append(out, u)
	}
	return out, total, rows.Err()
}

func findAdminUser(ctx context.Context, q sqldb.Querier, userID string, now time.Time) (*AdminUser, error) {
	var u AdminUser
	err := q.QueryRow(ctx, `SELECT `+adminUserColumns(q.Dialect(), "$1")+`,
		(SELECT count(*) FROM sessions s WHERE s.user_id = users.id AND s.revoked_at IS NULL AND s.expires_at > $1)
		FROM users WHERE id = $2`, now, userID).Scan(append(adminUserDest(&u), &u.Sessions)...)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, tenantry.Errorf(tenantry.ENotFound, "User not found")
	}
	return &u, err
}
