package httpapi

import (
	"fmt"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
)

// The JSON shapes of the API's answers (openapi.yaml describes each), and
// the conversions from the sale package's types.

type itemJSON struct {
	ID          int32  `json:"id"`
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	ImageURL    string `json:"image_url"`
	// Price is a decimal string with the currency's digits, so no client
	// ever sees a float price.
	Price    string `json:"price"`
	Currency string `json:"currency"`
}

func toItemJSON(it sale.Item) itemJSON {
	image := it.ImageURL
	if image == "" {
		image = fmt.Sprintf("/items/%d/%d/image.svg", it.SaleID, it.ID)
	}
	return itemJSON{
		ID: it.ID, SKU: it.SKU, Name: it.Name, Description: it.Description, ImageURL: image,
		Price: sale.FormatPrice(it.PriceCents, it.Currency), Currency: it.Currency,
	}
}

type itemStockJSON struct {
	itemJSON
	FreeUnits int64 `json:"free_units"`
	HeldUnits int64 `json:"held_units"`
}

type checkoutResponse struct {
	Code string `json:"code"`
	// CheckoutCode is Code under the old system's name (see aliases.go).
	CheckoutCode string    `json:"checkout_code"`
	SaleID       int64     `json:"sale_id"`
	UserID       string    `json:"user_id"`
	Item         itemJSON  `json:"item"`
	ExpiresAt    time.Time `json:"expires_at"`
}

func toCheckoutResponse(hold sale.Hold) checkoutResponse {
	return checkoutResponse{
		Code: hold.Code, CheckoutCode: hold.Code, SaleID: hold.SaleID, UserID: hold.UserID, Item: toItemJSON(hold.Item),
		ExpiresAt: hold.ExpiresAt.UTC(),
	}
}

type purchaseJSON struct {
	PurchaseID    int64     `json:"purchase_id"`
	SaleID        int64     `json:"sale_id"`
	UserID        string    `json:"user_id"`
	Item          itemJSON  `json:"item"`
	PurchasedAt   time.Time `json:"purchased_at"`
	UserPurchases int64     `json:"user_purchases"`
}

func toPurchaseJSON(p sale.Purchase) purchaseJSON {
	return purchaseJSON{
		PurchaseID: p.ID, SaleID: p.SaleID, UserID: p.UserID, Item: toItemJSON(p.Item),
		PurchasedAt: p.PurchasedAt.UTC(), UserPurchases: p.UserPurchases,
	}
}

type saleJSON struct {
	ID             int64     `json:"id"`
	StartsAt       time.Time `json:"starts_at"`
	EndsAt         time.Time `json:"ends_at"`
	UnitsTotal     int32     `json:"units_total"`
	UnitsSold      int64     `json:"units_sold"`
	UnitsHeld      int64     `json:"units_held"`
	UnitsAvailable int64     `json:"units_available"`
	Items          int32     `json:"items"`
	PerUserLimit   int32     `json:"per_user_limit"`
	HoldTTLSeconds float64   `json:"hold_ttl_seconds"`
	Buyers         int64     `json:"buyers"`
}

func toSaleJSON(sum sale.Summary) saleJSON {
	return saleJSON{
		ID: sum.ID, StartsAt: sum.StartsAt.UTC(), EndsAt: sum.EndsAt.UTC(), UnitsTotal: sum.UnitsTotal,
		UnitsSold: sum.UnitsSold, UnitsHeld: sum.UnitsHeld, UnitsAvailable: sum.UnitsAvailable,
		Items: sum.Items, PerUserLimit: sum.PerUserLimit, HoldTTLSeconds: sum.HoldTTL.Seconds(),
		Buyers: sum.Buyers,
	}
}
