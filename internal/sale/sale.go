// Package sale holds the business rules of the flash sale: creating sale
// windows, holding a unit at checkout and selling it at purchase. It owns
// the transactions (tx.go): each batch of checkouts or purchases is one
// READ COMMITTED transaction made of the named queries in queries/, which
// state the rules (SKIP LOCKED claims, per-user advisory locks and
// counters); constraints in the schema back them. It maps the outcomes the
// queries return to errors and knows nothing of HTTP.
package sale

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/db"
)

// Settings are copied into each sale when it is created.
type Settings struct {
	Duration     time.Duration
	Units        int
	Items        int
	PerUserLimit int
	HoldTTL      time.Duration
}

// Service is safe for concurrent use; it keeps no state that decides
// anything, so any number of servers can run against one database.
type Service struct {
	pool     *pgxpool.Pool
	q        *db.Queries
	settings Settings
	timeout  time.Duration
	log      *slog.Logger

	checkouts *batcher[checkoutRequest, db.CheckoutsDecideRow]
	purchases *batcher[string, purchaseResult]

	// soldOut is set while the last checkout batch found the current sale
	// with no free unit: the next batch then tries the short query first
	// (CheckoutAttemptsInsertIfSoldOut), which checks it again and stores
	// nothing when a unit is free. A hint for which query to send, never a
	// decision.
	soldOut atomic.Bool
}

// checkoutRequest is one checkout waiting for its batch.
type checkoutRequest struct {
	userID string
	itemID int64
	code   string
}

// NewService returns a Service whose every database call is bounded by
// timeout, so an unreachable database turns into ErrUnavailable quickly.
// Close it when done.
func NewService(pool *pgxpool.Pool, settings Settings, timeout time.Duration, log *slog.Logger, opts ...Option) *Service {
	s := &Service{pool: pool, q: db.New(), settings: settings, timeout: timeout, log: log}
	obs := applyOptions(opts).observer
	workers := int(pool.Config().MaxConns)
	s.checkouts = newBatcher(workers, timeout, func(r checkoutRequest) string { return r.userID },
		observed(obs, "checkout", s.checkoutBatch, checkoutOutcome, obs.CheckoutOutcome))
	s.purchases = newBatcher(workers, timeout, func(code string) string { return code },
		observed(obs, "purchase", s.purchaseBatch, purchaseOutcome, obs.PurchaseOutcome))
	return s
}

// Close stops the batch workers. Call it after the HTTP server has stopped,
// so that no request waits for a batch.
func (s *Service) Close() {
	s.checkouts.close()
	s.purchases.close()
}

// checkoutBatch decides a batch of checkouts in one transaction: the users'
// locks, then the claims and one stored attempt per request
// (queries/checkout.sql). During a sold-out storm, the short way first.
func (s *Service) checkoutBatch(deadline time.Time, reqs []checkoutRequest) ([]db.CheckoutsDecideRow, error) {
	arg := db.CheckoutsDecideParams{
		UserIds: make([]string, len(reqs)), ItemIds: make([]int64, len(reqs)), Codes: make([]string, len(reqs)),
	}
	for i, r := range reqs {
		arg.UserIds[i], arg.ItemIds[i], arg.Codes[i] = r.userID, r.itemID, r.code
	}
	ctx := context.Background() // the deadline is inTx's
	if s.soldOut.Load() {
		var refused []db.CheckoutAttemptsInsertIfSoldOutRow
		err := inTx(s.pool, deadline, commitGrace(s.timeout), func(tx db.DBTX) (err error) {
			refused, err = s.q.CheckoutAttemptsInsertIfSoldOut(ctx, tx,
				db.CheckoutAttemptsInsertIfSoldOutParams{UserIds: arg.UserIds, ItemIds: arg.ItemIds})
			if err != nil {
				return fmt.Errorf("store sold-out attempts: %w", err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(refused) > 0 {
			rows := make([]db.CheckoutsDecideRow, len(refused))
			for i, r := range refused {
				rows[i] = db.CheckoutsDecideRow{Ord: r.Ord, Outcome: r.Outcome, SaleID: r.SaleID}
			}
			return inOrder(rows, len(reqs), func(r db.CheckoutsDecideRow) int32 { return r.Ord })
		}
		// A unit is free again (a hold expired): nothing was stored.
	}
	var rows []db.CheckoutsDecideRow
	err := inTx(s.pool, deadline, commitGrace(s.timeout), func(tx db.DBTX) (err error) {
		if _, err = s.q.UserLocksTakeForCheckout(ctx, tx, arg.UserIds); err != nil {
			return fmt.Errorf("take user locks: %w", err)
		}
		if rows, err = s.q.CheckoutsDecide(ctx, tx, arg); err != nil {
			return fmt.Errorf("decide checkouts: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.soldOut.Store(!slices.ContainsFunc(rows, func(r db.CheckoutsDecideRow) bool {
		return r.Outcome != db.CheckoutOutcomeSoldOut
	}))
	return inOrder(rows, len(reqs), func(r db.CheckoutsDecideRow) int32 { return r.Ord })
}

// purchaseResult is one code's answer in a purchase batch: its row, or the
// database's refusal of that purchase alone.
type purchaseResult struct {
	row db.PurchasesGetByCodesRow
	err error
}

// purchaseBatch sells the units held under a batch of codes in one
// transaction (queries/purchase.sql). When PostgreSQL refuses the batch
// because one purchase would take its user past the cap
// (buyers_within_limit; checkout's cap makes this unreachable, the CHECK is
// the last word), the codes are sold one transaction each, so that only the
// refused one is refused.
func (s *Service) purchaseBatch(deadline time.Time, codes []string) ([]purchaseResult, error) {
	rows, err := s.purchaseTx(deadline, codes)
	switch {
	case capRefused(err) && len(codes) == 1:
		return []purchaseResult{{err: fmt.Errorf("%w: %w", ErrUserLimit, err)}}, nil
	case capRefused(err):
		out := make([]purchaseResult, len(codes))
		for i, code := range codes {
			one, err := s.purchaseBatch(deadline, []string{code})
			if err != nil {
				return nil, err
			}
			out[i] = one[0]
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]purchaseResult, len(rows))
	for i, r := range rows {
		out[i].row = r
	}
	return out, nil
}

func (s *Service) purchaseTx(deadline time.Time, codes []string) ([]db.PurchasesGetByCodesRow, error) {
	ctx := context.Background()
	var rows []db.PurchasesGetByCodesRow
	err := inTx(s.pool, deadline, commitGrace(s.timeout), func(tx db.DBTX) (err error) {
		if _, err = s.q.UnitsLockHeld(ctx, tx, codes); err != nil {
			return fmt.Errorf("lock held units: %w", err)
		}
		if _, err = s.q.UserLocksTakeForCodes(ctx, tx, codes); err != nil {
			return fmt.Errorf("take user locks: %w", err)
		}
		if _, err = s.q.UnitsSell(ctx, tx, codes); err != nil {
			return fmt.Errorf("sell units: %w", err)
		}
		if rows, err = s.q.PurchasesGetByCodes(ctx, tx, codes); err != nil {
			return fmt.Errorf("read purchases: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inOrder(rows, len(codes), func(r db.PurchasesGetByCodesRow) int32 { return r.Ord })
}

// inOrder puts a batch's rows in request order by their 1-based ord,
// failing unless every one of the n requests has exactly one row.
func inOrder[Row any](rows []Row, n int, ord func(Row) int32) ([]Row, error) {
	if len(rows) != n {
		return nil, fmt.Errorf("batch of %d requests answered %d rows", n, len(rows))
	}
	out := make([]Row, n)
	seen := make([]bool, n)
	for _, r := range rows {
		i := int(ord(r)) - 1
		if i < 0 || i >= n || seen[i] {
			return nil, fmt.Errorf("batch answered request %d of %d twice or out of range", i+1, n)
		}
		out[i], seen[i] = r, true
	}
	return out, nil
}

// Item is one product of a sale.
type Item struct {
	SaleID     int64
	ID         int32
	Name       string
	PriceCents int32
}

// Hold is a unit reserved for a user until ExpiresAt, redeemable with Code.
type Hold struct {
	Code      string
	SaleID    int64
	UserID    string
	Item      Item
	ExpiresAt time.Time
}

// Purchase is a sold unit.
type Purchase struct {
	ID          int64
	SaleID      int64
	UserID      string
	Item        Item
	Code        string
	PurchasedAt time.Time
	// UserPurchases is how many units the user owns in the sale, this one included.
	UserPurchases int64
}

// Checkout holds a unit of item itemID of the current sale for userID. The
// attempt is stored whatever its outcome, before this returns.
func (s *Service) Checkout(ctx context.Context, userID string, itemID int64) (Hold, error) {
	if err := ValidateUserID(userID); err != nil {
		return Hold{}, err
	}
	if itemID < 1 {
		return Hold{}, invalid("id must be a positive integer")
	}
	code, err := newCode()
	if err != nil {
		return Hold{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	row, err := s.checkouts.do(ctx, checkoutRequest{userID: userID, itemID: itemID, code: code})
	if err != nil {
		return Hold{}, interpret(err, "checkout", nil)
	}
	if row.Outcome != db.CheckoutOutcomeHeld {
		return Hold{}, checkoutError(row.Outcome)
	}
	if row.SaleID == nil || row.Code == nil || row.ExpiresAt == nil || row.ItemName == nil || row.PriceCents == nil {
		return Hold{}, fmt.Errorf("checkout: held row without its hold: %+v", row)
	}
	return Hold{
		Code:      *row.Code,
		SaleID:    *row.SaleID,
		UserID:    userID,
		Item:      Item{SaleID: *row.SaleID, ID: int32(itemID), Name: *row.ItemName, PriceCents: *row.PriceCents},
		ExpiresAt: *row.ExpiresAt,
	}, nil
}

// Purchase sells the unit held under code. Repeating it with a code already
// used returns the same purchase and sells nothing more.
func (s *Service) Purchase(ctx context.Context, code string) (Purchase, error) {
	if err := validateCode(code); err != nil {
		return Purchase{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := s.purchases.do(ctx, code)
	if err == nil {
		err = res.err
	}
	if err != nil {
		return Purchase{}, interpret(err, "purchase", nil)
	}
	row := res.row
	if row.Outcome != db.PurchaseOutcomePurchased {
		return Purchase{}, purchaseError(row.Outcome)
	}
	if row.PurchaseID == nil || row.SaleID == nil || row.UserID == nil || row.ItemID == nil || row.ItemName == nil ||
		row.PriceCents == nil || row.PurchasedAt == nil || row.UserPurchases == nil {
		return Purchase{}, fmt.Errorf("purchase: purchased row without its purchase: %+v", row)
	}
	return Purchase{
		ID:     *row.PurchaseID,
		SaleID: *row.SaleID,
		UserID: *row.UserID,
		Item: Item{
			SaleID: *row.SaleID, ID: int32(*row.ItemID), Name: *row.ItemName, PriceCents: *row.PriceCents,
		},
		Code:          code,
		PurchasedAt:   *row.PurchasedAt,
		UserPurchases: int64(*row.UserPurchases),
	}, nil
}

// UserPurchases lists what userID bought in sale saleID.
func (s *Service) UserPurchases(ctx context.Context, saleID int64, userID string) ([]Purchase, error) {
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.q.PurchasesListByUser(ctx, s.pool, db.PurchasesListByUserParams{SaleID: saleID, UserID: userID})
	if err != nil {
		return nil, interpret(err, "list purchases", nil)
	}
	out := make([]Purchase, len(rows))
	for i, r := range rows {
		out[i] = Purchase{
			ID: r.ID, SaleID: r.SaleID, UserID: r.UserID, Code: r.Code, PurchasedAt: r.PurchasedAt,
			Item:          Item{SaleID: r.SaleID, ID: r.ItemID, Name: r.ItemName, PriceCents: r.PriceCents},
			UserPurchases: int64(len(rows)),
		}
	}
	return out, nil
}

// ErrInvalidRequest marks input that can never succeed; the message after it
// says which rule it broke.
var ErrInvalidRequest = errors.New("invalid request")

func invalid(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidRequest, msg) }

// MaxUserIDBytes matches the checkout_attempts_user_id_length constraint.
const MaxUserIDBytes = 64

// ValidateUserID accepts 1 to 64 bytes of UTF-8 without control characters.
func ValidateUserID(userID string) error {
	switch {
	case userID == "":
		return invalid("user_id is required")
	case len(userID) > MaxUserIDBytes:
		return invalid(fmt.Sprintf("user_id must be at most %d bytes", MaxUserIDBytes))
	case !utf8.ValidString(userID):
		return invalid("user_id must be valid UTF-8")
	case strings.IndexFunc(userID, unicode.IsControl) >= 0:
		return invalid("user_id must not contain control characters")
	}
	return nil
}

// codeBytes of crypto/rand: 128 bits, unguessable.
const codeBytes = 16

func newCode() (string, error) {
	b := make([]byte, codeBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate checkout code: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func validateCode(code string) error {
	switch {
	case code == "":
		return invalid("code is required")
	case len(code) > 128:
		return invalid("code is too long")
	case !utf8.ValidString(code) || strings.IndexFunc(code, unicode.IsControl) >= 0:
		return invalid("code must be printable text")
	}
	return nil
}
