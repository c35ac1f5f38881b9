package accountsgorm

import (
	"context"
	"errors"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports/accounts"
)

// userRepo implements accounts.UserRepository on one scope: the pool or a transaction.
type userRepo struct{ db *gorm.DB }

var _ accounts.UserRepository = userRepo{}

func (r userRepo) Add(ctx context.Context, u *user.User) error {
	row := toUserRow(u)
	err := r.db.WithContext(ctx).Create(&row).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		// The unique index on the normalised email decides, never a prior lookup, so two
		// concurrent signups cannot both win. Ids are random UUIDv7s, so the email is the
		// only unique key a new account can realistically collide on.
		return user.ErrEmailTaken
	}
	return gormstore.MapErr(err)
}

func (r userRepo) ByID(ctx context.Context, id identity.UserID) (*user.User, error) {
	return r.take(ctx, "id = ?", string(id), false)
}

func (r userRepo) ByIDForUpdate(ctx context.Context, id identity.UserID) (*user.User, error) {
	return r.take(ctx, "id = ?", string(id), true)
}

func (r userRepo) ByEmail(ctx context.Context, email user.Email) (*user.User, error) {
	return r.take(ctx, "email = ?", email.String(), false)
}

func (r userRepo) take(ctx context.Context, cond string, arg string, lock bool) (*user.User, error) {
	var row userRow
	q := r.db.WithContext(ctx).Where(cond, arg)
	if lock && gormstore.IsMySQL(r.db) {
		// A locking read (see sessionRepo.byID); SQLite's write transactions already run
		// one at a time.
		q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	err := q.Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, user.ErrNotFound
	}
	if err != nil {
		return nil, gormstore.MapErr(err)
	}
	return row.toDomain(), nil
}

func (r userRepo) Update(ctx context.Context, u *user.User) error {
	// A map, not the struct: GORM skips zero-valued struct fields, and the empty name is a
	// legitimate value that must be written.
	res := r.db.WithContext(ctx).Model(&userRow{}).Where("id = ?", string(u.ID())).Updates(map[string]any{
		"name":       u.Name(),
		"name_lower": foldName(u.Name()),
		"role":       string(u.Role()),
		"updated_at": gormstore.DBTime(u.UpdatedAt()),
	})
	if res.Error != nil {
		return gormstore.MapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return user.ErrNotFound
	}
	return nil
}

func (r userRepo) Delete(ctx context.Context, id identity.UserID) error {
	// The foreign keys delete every context's rows of the user with this one; each context
	// also deletes them itself (ports.UserDataOwner), so neither depends on the other.
	res := r.db.WithContext(ctx).Where("id = ?", string(id)).Delete(&userRow{})
	if res.Error != nil {
		return gormstore.MapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return user.ErrNotFound
	}
	return nil
}

// likeEscape is the escape character of Search's LIKE patterns. It is not the backslash
// because a backslash literal is spelled differently in MySQL ('\\', unless
// NO_BACKSLASH_ESCAPES is on) and in SQLite ('\'); '!' is spelled the same everywhere.
const likeEscape = "!"

var likeEscaper = strings.NewReplacer(likeEscape, likeEscape+likeEscape, "%", likeEscape+"%", "_", likeEscape+"_")

// containsPattern is a LIKE pattern matching s literally anywhere in a value.
func containsPattern(s string) string {
	return "%" + likeEscaper.Replace(s) + "%"
}

func (r userRepo) Search(ctx context.Context, q accounts.UserQuery) ([]*user.User, error) {
	if strings.ContainsRune(q.Query, 0) {
		// No email or name holds a control character, so nothing matches; and SQLite's LIKE
		// would end the pattern at the NUL and match everyone.
		return nil, nil
	}
	tx := r.db.WithContext(ctx).Model(&userRow{})
	if q.Query != "" {
		// Both sides are in NFC and case folded by Go (emails when they were parsed, names in
		// name_lower, the query here: user.SearchForm) and the columns compare bytes, so the
		// match is the same case-insensitive literal substring match on every dialect, however
		// the accents of the query or of the name were composed.
		pattern := containsPattern(user.SearchForm(q.Query))
		tx = tx.Where("(email LIKE ? ESCAPE '"+likeEscape+"' OR name_lower LIKE ? ESCAPE '"+likeEscape+"')", pattern, pattern)
	}
	if q.Before != "" {
		tx = tx.Where("id < ?", string(q.Before))
	}
	if q.Limit > 0 {
		tx = tx.Limit(q.Limit)
	}
	var rows []userRow
	if err := tx.Order("id DESC").Find(&rows).Error; err != nil {
		return nil, gormstore.MapErr(err)
	}
	out := make([]*user.User, len(rows))
	for i := range rows {
		out[i] = rows[i].toDomain()
	}
	return out, nil
}

func (r userRepo) CountAdminsForUpdate(ctx context.Context) (int, error) {
	tx := r.db.WithContext(ctx).Model(&userRow{}).Where("role = ?", string(identity.RoleAdmin))
	if gormstore.IsMySQL(r.db) {
		// Locking the admin rows (through the role index) makes a second transaction that
		// wants to demote or delete an admin wait here until this one ends, and then count
		// what this one left behind. SQLite has no row locks and needs none: its write
		// transactions begin IMMEDIATE, so they already run one at a time.
		tx = tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	var ids []string
	if err := tx.Pluck("id", &ids).Error; err != nil {
		return 0, gormstore.MapErr(err)
	}
	return len(ids), nil
}
