package store

import (
	"time"

	"github.com/flashsale/flashsale/db"
)

// Sale is one sale window and the settings it was created with. Its
// definition changes only before it starts; once it runs, only PausedAt
// and an earlier EndsAt (ended by an admin).
type Sale struct {
	ID           int64
	StartsAt     time.Time
	EndsAt       time.Time
	UnitsTotal   int32
	Items        int32
	PerUserLimit int32
	HoldTTL      time.Duration
	// DefinedBy is who defined the sale; empty for a generated one.
	DefinedBy string
	// DefinitionSHA256 is the digest of the definition as applied.
	DefinitionSHA256 string
	// PausedAt is when checkouts were paused; zero while they run.
	PausedAt time.Time
}

// Summary is a sale with its live counts (the sale_stock view).
type Summary struct {
	Sale
	UnitsSold       int64
	UnitsHeld       int64
	UnitsAvailable  int64
	Buyers          int64
	MaxUnitsPerUser int64
}

// Item is one product of a sale.
type Item struct {
	SaleID      int64
	ID          int32
	SKU         string
	Name        string
	Description string
	// PriceCents is the price in the currency's minor unit.
	PriceCents int32
	Currency   string
	// ImageURL is the shop's picture of the item; empty for a generated one.
	ImageURL string
	// Units is how many of the sale's units are this item (0 where not read).
	Units int32
}

// ItemStock is an item with the number of its units free right now.
type ItemStock struct {
	Item
	FreeUnits int64
	// HeldUnits are held by checkouts not yet bought: free again if their
	// holds expire.
	HeldUnits int64
}

// ItemCount is how many units of an item are free and held right now.
type ItemCount struct {
	ItemID    int32
	FreeUnits int64
	HeldUnits int64
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

// Outcome is what a checkout or a purchase came to, as the checkout_outcome
// and purchase_outcome enums name it.
type Outcome string

// The outcomes; TestOutcomesMatchTheEnums ties them to the enums.
const (
	Held             Outcome = "held"
	SalePaused       Outcome = "sale_paused"
	NoActiveSale     Outcome = "no_active_sale"
	ItemNotFound     Outcome = "item_not_found"
	ItemUnavailable  Outcome = "item_unavailable"
	SoldOut          Outcome = "sold_out"
	UserLimitReached Outcome = "user_limit_reached"
	RateLimited      Outcome = "rate_limited"

	Purchased    Outcome = "purchased"
	CodeNotFound Outcome = "code_not_found"
	CodeExpired  Outcome = "code_expired"
)

// CheckoutOutcomes lists every outcome a checkout can be stored with.
func CheckoutOutcomes() []Outcome { return outcomes(db.AllCheckoutOutcomeValues()) }

// PurchaseOutcomes lists every outcome a purchase can be decided with.
func PurchaseOutcomes() []Outcome { return outcomes(db.AllPurchaseOutcomeValues()) }

func outcomes[O ~string](all []O) []Outcome {
	out := make([]Outcome, len(all))
	for i, o := range all {
		out[i] = Outcome(o)
	}
	return out
}

func saleFromRow(r db.Sale) Sale {
	return Sale{
		ID: r.ID, StartsAt: r.StartsAt, EndsAt: r.EndsAt, UnitsTotal: r.UnitsTotal, Items: r.Items,
		PerUserLimit: r.PerUserLimit, HoldTTL: r.HoldTTL,
		DefinedBy: deref(r.DefinedBy), DefinitionSHA256: deref(r.DefinitionSha256), PausedAt: deref(r.PausedAt),
	}
}

func itemFromRow(r db.Item) Item {
	return Item{
		SaleID: r.SaleID, ID: r.ItemID, SKU: r.Sku, Name: r.Name, Description: r.Description,
		PriceCents: r.PriceCents, Currency: r.Currency, ImageURL: deref(r.ImageUrl), Units: r.Units,
	}
}
