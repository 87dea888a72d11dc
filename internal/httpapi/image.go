package httpapi

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"html"

	"github.com/flashsale/flashsale/internal/sale"
)

// itemSVG draws an item's image from its sale, id and name alone, so every
// server renders the same bytes for the same item.
func itemSVG(it sale.Item) []byte {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d/%d", it.SaleID, it.ID)
	sum := h.Sum32()
	hue, hue2 := sum%360, (sum/360)%360
	shape := (sum / 129600) % 3
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="320" viewBox="0 0 320 320">`)
	fmt.Fprintf(&b, `<rect width="320" height="320" fill="hsl(%d,70%%,88%%)"/>`, hue)
	switch shape {
	case 0:
		fmt.Fprintf(&b, `<circle cx="160" cy="140" r="80" fill="hsl(%d,65%%,50%%)"/>`, hue2)
	case 1:
		fmt.Fprintf(&b, `<rect x="80" y="60" width="160" height="160" rx="24" fill="hsl(%d,65%%,50%%)"/>`, hue2)
	default:
		fmt.Fprintf(&b, `<polygon points="160,50 250,220 70,220" fill="hsl(%d,65%%,50%%)"/>`, hue2)
	}
	fmt.Fprintf(&b, `<text x="160" y="270" font-family="sans-serif" font-size="18" text-anchor="middle" fill="#222">%s</text>`,
		html.EscapeString(it.Name))
	fmt.Fprintf(&b, `<text x="160" y="298" font-family="sans-serif" font-size="14" text-anchor="middle" fill="#444">$%s</text>`,
		sale.FormatPrice(it.PriceCents, it.Currency))
	b.WriteString(`</svg>`)
	return b.Bytes()
}
