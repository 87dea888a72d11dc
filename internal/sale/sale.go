// Package sale holds the business rules of the flash sale: creating sale
// windows, holding a unit at checkout and selling it at purchase. It owns
// the transactions (tx.go): each batch of checkouts or purchases is one
// READ COMMITTED transaction made of the named queries in queries/, which
// state the rules (SKIP LOCKED claims, per-user advisory locks and
// counters); constraints in the schema back them. It maps the outcomes the
// queries return to errors and knows nothing of HTTP.
package sale

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
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
	// IdempotencyKeyTTL is how long the answer to a checkout with an
	// Idempotency-Key is kept (a server setting, not copied into sales).
	IdempotencyKeyTTL time.Duration
	// AttemptsRetention, when positive, is how long after a sale ended
	// (and its last hold expired) its checkout attempts are kept; the
	// scheduler then drops them (DropOldAttempts). Zero keeps everything.
	// A server setting, not copied into sales.
	AttemptsRetention time.Duration
}

// DefaultIdempotencyKeyTTL keeps answers a day, as Stripe does: long past
// any hold, and enough for a client that retries after an outage.
const DefaultIdempotencyKeyTTL = 24 * time.Hour

// Service is safe for concurrent use; it keeps no state that decides
// anything, so any number of servers can run against one database.
type Service struct {
	pool *pgxpool.Pool
	// read serves the reads that decide nothing (sales, items, stock,
	// a user's purchases, readiness): its own connections (WithReadPool),
	// so that however many clients read, checkouts and purchases never
	// wait for a connection behind them. pool when none was given.
	read     *pgxpool.Pool
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

// CheckoutRequest is one shopper's checkout.
type CheckoutRequest struct {
	UserID string
	ItemID int64
	// IdempotencyKey, when set, makes a repeat of the request (same user,
	// same key) answer what the first one was answered, storing nothing.
	IdempotencyKey string
	// RateLimited marks a request the server's rate limit refused: it is
	// stored as a rate_limited attempt, without taking its user's lock, and
	// answered ErrRateLimited.
	RateLimited bool
}

// checkoutRequest is one checkout waiting for its batch.
type checkoutRequest struct {
	CheckoutRequest
	code string
}

// batchKey is what may appear once per checkout batch: the user, whose
// lock the batch takes. A rate-limited request takes no lock and touches
// nothing of its user's, so it never waits for a later batch: a hot user's
// refusals are answered as fast as anyone's.
func (r checkoutRequest) batchKey() string {
	if r.RateLimited {
		return "\x00" + r.code
	}
	return r.UserID
}

// NewService returns a Service whose every database call is bounded by
// timeout, so an unreachable database turns into ErrUnavailable quickly.
// Close it when done.
func NewService(pool *pgxpool.Pool, settings Settings, timeout time.Duration, log *slog.Logger, opts ...Option) *Service {
	if settings.IdempotencyKeyTTL == 0 {
		settings.IdempotencyKeyTTL = DefaultIdempotencyKeyTTL
	}
	o := applyOptions(opts)
	s := &Service{pool: pool, read: cmp.Or(o.readPool, pool), q: db.New(), settings: settings, timeout: timeout, log: log}
	obs := o.observer
	workers := int(pool.Config().MaxConns)
	s.checkouts = newBatcher(workers, timeout, checkoutRequest.batchKey,
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
// (queries/checkout.sql). During a sold-out storm, the short way first for
// the requests it can answer: all but those with an idempotency key.
func (s *Service) checkoutBatch(deadline time.Time, reqs []checkoutRequest) ([]db.CheckoutsDecideRow, error) {
	out := make([]db.CheckoutsDecideRow, len(reqs))
	var answered map[int]db.CheckoutsDecideRow // by index in reqs
	if s.soldOut.Load() {
		var err error
		if answered, err = s.checkoutShort(deadline, reqs); err != nil {
			return nil, err
		}
	}
	// The rest, in arrival order: arrival decides who gets an item's units.
	var rest []checkoutRequest
	var restAt []int
	for i, r := range reqs {
		if row, ok := answered[i]; ok {
			out[i] = row
		} else {
			rest, restAt = append(rest, r), append(restAt, i)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	rows, err := s.checkoutFull(deadline, rest)
	if err != nil {
		return nil, err
	}
	for k, row := range rows {
		out[restAt[k]] = row
	}
	return out, nil
}

// checkoutShort stores the requests of reqs that CheckoutAttemptsInsertIfSoldOut
// can refuse without locks, and returns their rows by index in reqs. A
// request with an idempotency key is left out: its key is read under its
// user's lock.
func (s *Service) checkoutShort(deadline time.Time, reqs []checkoutRequest) (map[int]db.CheckoutsDecideRow, error) {
	var arg db.CheckoutAttemptsInsertIfSoldOutParams
	var at []int // index in reqs of each request sent
	for i, r := range reqs {
		if r.IdempotencyKey != "" {
			continue
		}
		arg.UserIds, arg.ItemIds = append(arg.UserIds, r.UserID), append(arg.ItemIds, r.ItemID)
		arg.RateLimited, at = append(arg.RateLimited, r.RateLimited), append(at, i)
	}
	if len(at) == 0 {
		return nil, nil
	}
	var refused []db.CheckoutAttemptsInsertIfSoldOutRow
	err := inTx(s.pool, deadline, commitGrace(s.timeout), func(tx db.DBTX) (err error) {
		refused, err = s.q.CheckoutAttemptsInsertIfSoldOut(context.Background(), tx, arg)
		if err != nil {
			return fmt.Errorf("store sold-out attempts: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	answered := make(map[int]db.CheckoutsDecideRow, len(refused))
	for _, r := range refused {
		k := int(r.Ord) - 1
		if k < 0 || k >= len(at) {
			return nil, fmt.Errorf("sold-out batch of %d answered request %d", len(at), k+1)
		}
		if _, dup := answered[at[k]]; dup {
			return nil, fmt.Errorf("sold-out batch answered request %d twice", k+1)
		}
		answered[at[k]] = db.CheckoutsDecideRow{Ord: r.Ord, Outcome: r.Outcome, SaleID: r.SaleID}
	}
	return answered, nil
}

// checkoutFull decides reqs under their users' locks.
func (s *Service) checkoutFull(deadline time.Time, reqs []checkoutRequest) ([]db.CheckoutsDecideRow, error) {
	arg := db.CheckoutsDecideParams{
		UserIds: make([]string, len(reqs)), ItemIds: make([]int64, len(reqs)), Codes: make([]string, len(reqs)),
		IdempotencyKeys: make([]string, len(reqs)), RateLimited: make([]bool, len(reqs)),
		IdempotencyKeyTtlSeconds: s.settings.IdempotencyKeyTTL.Seconds(),
	}
	locked := make([]string, 0, len(reqs)) // a rate-limited request takes no lock
	for i, r := range reqs {
		arg.UserIds[i], arg.ItemIds[i], arg.Codes[i] = r.UserID, r.ItemID, r.code
		arg.IdempotencyKeys[i], arg.RateLimited[i] = r.IdempotencyKey, r.RateLimited
		if !r.RateLimited {
			locked = append(locked, r.UserID)
		}
	}
	ctx := context.Background() // the deadline is inTx's
	var rows []db.CheckoutsDecideRow
	err := inTx(s.pool, deadline, commitGrace(s.timeout), func(tx db.DBTX) (err error) {
		if _, err = s.q.UserLocksTakeForCheckout(ctx, tx, locked); err != nil {
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
	// Only the sale's own answers say whether it is sold out.
	decided := slices.DeleteFunc(slices.Clone(rows), func(r db.CheckoutsDecideRow) bool {
		return r.Replayed || r.Outcome == db.CheckoutOutcomeRateLimited
	})
	if len(decided) > 0 {
		s.soldOut.Store(!slices.ContainsFunc(decided, func(r db.CheckoutsDecideRow) bool {
			return r.Outcome != db.CheckoutOutcomeSoldOut
		}))
	}
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
	groups := bySale(codes)
	read := make([][]db.PurchasesGetByCodesRow, len(groups))
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
		for i, g := range groups {
			arg := db.PurchasesGetByCodesParams{SaleID: g.sale, Codes: g.codes}
			if read[i], err = s.q.PurchasesGetByCodes(ctx, tx, arg); err != nil {
				return fmt.Errorf("read purchases of sale %d: %w", g.sale, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]db.PurchasesGetByCodesRow, len(codes))
	for i, g := range groups {
		rows, err := inOrder(read[i], len(g.codes), func(r db.PurchasesGetByCodesRow) int32 { return r.Ord })
		if err != nil {
			return nil, fmt.Errorf("purchases of sale %d: %w", g.sale, err)
		}
		for k, r := range rows {
			out[g.at[k]] = r
		}
	}
	return out, nil
}

// saleCodes are the codes of a batch that name one sale, and their
// indexes in the batch.
type saleCodes struct {
	sale  int64
	codes []string
	at    []int
}

// bySale groups a batch's codes by the sale they name, in order of first
// appearance: one PurchasesGetByCodes per sale reads one partition of
// checkout_attempts. A batch nearly always holds one sale's codes (two
// around a sale's end).
func bySale(codes []string) []saleCodes {
	var groups []saleCodes
	for i, code := range codes {
		sale := codeSale(code)
		k := slices.IndexFunc(groups, func(g saleCodes) bool { return g.sale == sale })
		if k < 0 {
			groups, k = append(groups, saleCodes{sale: sale}), len(groups)
		}
		groups[k].codes, groups[k].at = append(groups[k].codes, code), append(groups[k].at, i)
	}
	return groups
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
	// Replayed: this is the answer an earlier request with the same
	// idempotency key got.
	Replayed bool
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

// Checkout holds a unit of the requested item of the current sale for the
// user. The attempt is stored whatever its outcome, before this returns.
// An answer given from an earlier request with the same idempotency key
// has Hold.Replayed set, or its error wraps ErrReplayed.
func (s *Service) Checkout(ctx context.Context, req CheckoutRequest) (Hold, error) {
	if err := ValidateUserID(req.UserID); err != nil {
		return Hold{}, err
	}
	if req.ItemID < 1 {
		return Hold{}, invalid("id must be a positive integer")
	}
	if req.IdempotencyKey != "" {
		if err := ValidateIdempotencyKey(req.IdempotencyKey); err != nil {
			return Hold{}, err
		}
	}
	code, err := newCode()
	if err != nil {
		return Hold{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	row, err := s.checkouts.do(ctx, checkoutRequest{CheckoutRequest: req, code: code})
	if err != nil {
		return Hold{}, interpret(err, "checkout", nil)
	}
	if row.KeyReused {
		return Hold{}, ErrKeyReused
	}
	if row.Outcome != db.CheckoutOutcomeHeld {
		err := checkoutError(row.Outcome)
		if row.Replayed {
			err = fmt.Errorf("%w: %w", ErrReplayed, err)
		}
		return Hold{}, err
	}
	if row.SaleID == nil || row.Code == nil || row.ExpiresAt == nil || row.ItemName == nil || row.PriceCents == nil {
		return Hold{}, fmt.Errorf("checkout: held row without its hold: %+v", row)
	}
	return Hold{
		Code:      *row.Code,
		SaleID:    *row.SaleID,
		UserID:    req.UserID,
		Item:      Item{SaleID: *row.SaleID, ID: int32(req.ItemID), Name: *row.ItemName, PriceCents: *row.PriceCents},
		ExpiresAt: *row.ExpiresAt,
		Replayed:  row.Replayed,
	}, nil
}

// Purchase sells the unit held under code. Repeating it with a code already
// used returns the same purchase and sells nothing more, so clients may
// retry it freely. A buyer, when given (the authenticated user), must be
// the user the code was issued to.
func (s *Service) Purchase(ctx context.Context, code, buyer string) (Purchase, error) {
	if err := validateCode(code); err != nil {
		return Purchase{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if buyer != "" {
		// A code's holder never changes, so checking before the purchase's
		// transaction leaves no gap. An unknown code goes on to be answered
		// code_not_found.
		holder, err := s.q.CheckoutHolderByCode(ctx, s.pool, db.CheckoutHolderByCodeParams{SaleID: codeSale(code), Code: code})
		switch {
		case err == nil && holder != buyer:
			return Purchase{}, ErrNotCodeHolder
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return Purchase{}, interpret(err, "look up the code's holder", nil)
		}
	}
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
	rows, err := s.q.PurchasesListByUser(ctx, s.read, db.PurchasesListByUserParams{SaleID: saleID, UserID: userID})
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

// MaxIdempotencyKeyBytes matches the idempotency_keys_key_valid constraint.
const MaxIdempotencyKeyBytes = 255

// ValidateIdempotencyKey accepts 1 to 255 printable ASCII characters, the
// form Stripe and the IETF draft use (a UUID fits).
func ValidateIdempotencyKey(key string) error {
	if key == "" || len(key) > MaxIdempotencyKeyBytes {
		return invalid(fmt.Sprintf("Idempotency-Key must be 1 to %d characters", MaxIdempotencyKeyBytes))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return invalid("Idempotency-Key must be printable ASCII")
		}
	}
	return nil
}

// codeBytes of crypto/rand: 128 bits, unguessable.
const codeBytes = 16

// newCode returns the random part of a checkout code. CheckoutsDecide puts
// the id of the sale it holds a unit in before it, with a dot
// ("12.TcBN4Yx1h4IjllaGlOrybw"), so that a code's lookups read one
// partition of checkout_attempts: the sale is only known there.
func newCode() (string, error) {
	b := make([]byte, codeBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate checkout code: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// codeSale is the sale a code names, or 0 (no sale's id) when it names
// none: a code issued before codes named their sale (migration 00005), or
// one no checkout issued. Either way the lookups then read no partition of
// checkout_attempts, and the queries fall back on the unit that still
// carries the code. A code naming the wrong sale is simply not found.
func codeSale(code string) int64 {
	prefix, _, ok := strings.Cut(code, ".")
	if !ok || prefix == "" || prefix[0] == '0' || len(prefix) > 19 {
		return 0
	}
	for i := 0; i < len(prefix); i++ {
		if prefix[i] < '0' || prefix[i] > '9' {
			return 0
		}
	}
	id, err := strconv.ParseInt(prefix, 10, 64)
	if err != nil {
		return 0
	}
	return id
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
