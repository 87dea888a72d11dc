package httpapi

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/flashsale/flashsale/internal/sale"
)

// itemSVG draws an item's image from its sale, id, name and price alone,
// so every server renders the same bytes for the same item. A tile shows
// it about 140 px wide, under half its size: its text is the name's
// initials and the price, large enough to read there (about 40 and 19 px);
// the tile prints the whole name beside it.
func itemSVG(it sale.Item) []byte {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d/%d", it.SaleID, it.ID)
	sum := h.Sum32()
	hue, hue2 := sum%360, (sum/360)%360
	shape := (sum / 129600) % 3
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="320" viewBox="0 0 320 320">`)
	// The whole name for screen readers and tooltips.
	fmt.Fprintf(&b, `<title>%s, %s %s</title>`, html.EscapeString(it.Name), sale.FormatPrice(it.PriceCents, it.Currency),
		html.EscapeString(it.Currency))
	fmt.Fprintf(&b, `<rect width="320" height="320" fill="hsl(%d,70%%,88%%)"/>`, hue)
	switch shape {
	case 0:
		fmt.Fprintf(&b, `<circle cx="160" cy="128" r="100" fill="hsl(%d,60%%,38%%)"/>`, hue2)
	case 1:
		fmt.Fprintf(&b, `<rect x="60" y="28" width="200" height="200" rx="28" fill="hsl(%d,60%%,38%%)"/>`, hue2)
	default:
		fmt.Fprintf(&b, `<polygon points="160,18 275,232 45,232" fill="hsl(%d,60%%,38%%)"/>`, hue2)
	}
	y := 160
	if shape == 2 {
		y = 190 // the triangle's wide part
	}
	fmt.Fprintf(&b, `<text x="160" y="%d" font-family="sans-serif" font-weight="700" font-size="96" text-anchor="middle" fill="#fff">%s</text>`,
		y, html.EscapeString(initials(it.Name)))
	b.WriteString(`<rect y="254" width="320" height="66" fill="#fff" fill-opacity=".85"/>`)
	fmt.Fprintf(&b, `<text x="160" y="303" font-family="sans-serif" font-weight="700" font-size="40" text-anchor="middle" fill="#222">%s %s</text>`,
		sale.FormatPrice(it.PriceCents, it.Currency), html.EscapeString(it.Currency))
	b.WriteString(`</svg>`)
	return b.Bytes()
}

// initials are the first letters of a name's first two words ("Crimson
// Falcon #12": "CF"), or its first letter.
func initials(name string) string {
	var out []rune
	for _, w := range strings.Fields(name) {
		r, _ := utf8.DecodeRuneInString(w)
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			out = append(out, unicode.ToUpper(r))
		}
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return string(out)
}
