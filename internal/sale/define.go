package sale

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/currency"
)

// A Definition is a sale a shop defines: its window, its rules and its
// items. It is the JSON document of the admin API and of `server sale
// apply -f`; the CSV upload gives the items alone.
type Definition struct {
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	PerUserLimit int32     `json:"per_user_limit,omitempty"`
	// HoldTTL is a Go duration ("5m"); empty means the server's HOLD_TTL.
	HoldTTL string           `json:"hold_ttl,omitempty"`
	Items   []ItemDefinition `json:"items"`
}

// ItemDefinition is one product of a Definition.
type ItemDefinition struct {
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Price is a decimal string in the currency's major unit ("19.99").
	Price    string `json:"price"`
	Currency string `json:"currency"`
	Units    int32  `json:"units"`
	ImageURL string `json:"image_url,omitempty"`
}

// The documented bounds of a definition (docs/operating.md). The database
// states the ones it can (items' constraints); the sums are checked here.
const (
	MaxItemUnits      = 100_000
	MaxSaleUnits      = 1_000_000
	MaxSaleItems      = 10_000
	MaxPerUserLimit   = 1_000
	MaxSaleDuration   = 31 * 24 * time.Hour
	MinHoldTTL        = time.Second
	MaxHoldTTL        = 24 * time.Hour
	maxNameChars      = 128
	maxDescriptionLen = 2000
	maxImageURLBytes  = 2048
)

// FieldError is one rule a definition breaks, at a field path such as
// items[3].price (items counted from 0, as in the JSON array).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// DefinitionError lists every rule a definition breaks; it is an
// ErrInvalidRequest.
type DefinitionError struct {
	Fields []FieldError
}

func (e *DefinitionError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid sale definition: " + strings.Join(parts, "; ")
}

func (e *DefinitionError) Is(target error) bool {
	return target == ErrInvalidRequest || target == ErrInvalidDefinition
}

// ErrInvalidDefinition marks a DefinitionError.
var ErrInvalidDefinition = errors.New("invalid sale definition")

func (e *DefinitionError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (e *DefinitionError) orNil() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// ParseDefinition reads a JSON definition, refusing unknown fields (a
// misspelt "per_user_limt" would otherwise be silently the default).
func ParseDefinition(r io.Reader) (Definition, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return Definition{}, fmt.Errorf("read the definition: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var d Definition
	if err := dec.Decode(&d); err != nil {
		field := jsonErrorField(err)
		if field == "" {
			field = badTimeField(body)
		}
		return Definition{}, &DefinitionError{Fields: []FieldError{{Field: field, Message: jsonErrorMessage(err)}}}
	}
	if dec.More() {
		return Definition{}, &DefinitionError{Fields: []FieldError{{Field: "", Message: "one JSON object expected, found more"}}}
	}
	return d, nil
}

// badTimeField names the window field that is not an RFC 3339 time:
// encoding/json reports a time's parse error without its field.
func badTimeField(body []byte) string {
	var times struct {
		StartsAt json.RawMessage `json:"starts_at"`
		EndsAt   json.RawMessage `json:"ends_at"`
	}
	if json.Unmarshal(body, &times) != nil {
		return ""
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"starts_at", times.StartsAt}, {"ends_at", times.EndsAt}} {
		var t time.Time
		if f.raw != nil && json.Unmarshal(f.raw, &t) != nil {
			return f.name
		}
	}
	return ""
}

func jsonErrorField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	if name, ok := unknownJSONField(err); ok {
		return name
	}
	return ""
}

// unknownJSONField is the name in DisallowUnknownFields' error, which
// encoding/json gives only in its message (without the object's path).
func unknownJSONField(err error) (string, bool) {
	quoted, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	name, uerr := strconv.Unquote(quoted)
	return name, uerr == nil
}

func jsonErrorMessage(err error) string {
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("must be a JSON %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &pe):
		return "must be an RFC 3339 time such as 2026-12-24T18:00:00Z"
	}
	if _, ok := unknownJSONField(err); ok {
		return "is not a field of a sale definition or of its items"
	}
	return "not valid JSON for a sale definition: " + err.Error()
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "integer"
	case goKind == "slice":
		return "array"
	case goKind == "struct":
		return "object"
	}
	return goKind
}

// CSVHeader is the CSV upload's header line; image_url and description
// may be left empty.
var CSVHeader = []string{"sku", "name", "description", "price", "currency", "units", "image_url"}

// ParseItemsCSV reads items from CSV with CSVHeader's columns, in any order,
// header first. Errors name the line as items[n] (n counted from 0, the
// line after the header).
func ParseItemsCSV(r io.Reader) ([]ItemDefinition, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, &DefinitionError{Fields: []FieldError{{Field: "items", Message: "CSV with a header line expected: " + err.Error()}}}
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	var missing []string
	for _, h := range []string{"sku", "name", "price", "currency", "units"} {
		if _, ok := col[h]; !ok {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return nil, &DefinitionError{Fields: []FieldError{{Field: "items",
			Message: "CSV header lacks " + strings.Join(missing, ", ") + "; columns are " + strings.Join(CSVHeader, ",")}}}
	}
	cell := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var items []ItemDefinition
	bad := &DefinitionError{}
	for n := 0; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &DefinitionError{Fields: []FieldError{{Field: fmt.Sprintf("items[%d]", n), Message: err.Error()}}}
		}
		units, err := strconv.ParseInt(cell(rec, "units"), 10, 32)
		if err != nil {
			bad.add(fmt.Sprintf("items[%d].units", n), "must be an integer, got %q", cell(rec, "units"))
		}
		items = append(items, ItemDefinition{
			SKU: cell(rec, "sku"), Name: cell(rec, "name"), Description: cell(rec, "description"),
			Price: cell(rec, "price"), Currency: cell(rec, "currency"), Units: int32(units),
			ImageURL: cell(rec, "image_url"),
		})
	}
	return items, bad.orNil()
}

// plan is a definition checked and in the form the store takes.
type plan struct {
	sale  Sale
	items []Item
}

// check applies every rule of a definition that does not need the
// database, with the server's defaults for what it leaves out, and says
// every broken rule at once. now is the database's clock; zero leaves the
// start's lead to the store (ApplySale).
func (s *Service) check(d Definition, now time.Time) (plan, error) {
	bad := &DefinitionError{}
	p := plan{sale: Sale{StartsAt: d.StartsAt.UTC(), EndsAt: d.EndsAt.UTC(), PerUserLimit: d.PerUserLimit}}
	switch {
	case d.StartsAt.IsZero():
		bad.add("starts_at", "is required")
	case !now.IsZero() && !d.StartsAt.After(now.Add(s.settings.EditLead)):
		bad.add("starts_at", "must be more than %s from now (%s): a sale is defined ahead of its start",
			s.settings.EditLead, now.UTC().Format(time.RFC3339))
	}
	switch {
	case d.EndsAt.IsZero():
		bad.add("ends_at", "is required")
	case !d.EndsAt.After(d.StartsAt):
		bad.add("ends_at", "must be after starts_at")
	case d.EndsAt.Sub(d.StartsAt) > MaxSaleDuration:
		bad.add("ends_at", "a sale lasts at most %s", MaxSaleDuration)
	}
	if p.sale.PerUserLimit == 0 {
		p.sale.PerUserLimit = int32(s.settings.PerUserLimit)
	}
	if p.sale.PerUserLimit < 1 || p.sale.PerUserLimit > MaxPerUserLimit {
		bad.add("per_user_limit", "must be from 1 to %d", MaxPerUserLimit)
	}
	p.sale.HoldTTL = s.settings.HoldTTL
	if d.HoldTTL != "" {
		ttl, err := time.ParseDuration(d.HoldTTL)
		switch {
		case err != nil:
			bad.add("hold_ttl", "must be a duration such as 5m or 90s, got %q", d.HoldTTL)
		case ttl < MinHoldTTL || ttl > MaxHoldTTL:
			bad.add("hold_ttl", "must be from %s to %s", MinHoldTTL, MaxHoldTTL)
		default:
			p.sale.HoldTTL = ttl
		}
	}
	switch {
	case len(d.Items) == 0:
		bad.add("items", "a sale needs at least one item")
	case len(d.Items) > MaxSaleItems:
		bad.add("items", "a sale has at most %d items", MaxSaleItems)
	}
	skus := make(map[string]int, len(d.Items))
	var total int64
	for i, it := range d.Items {
		at := func(f string) string { return fmt.Sprintf("items[%d].%s", i, f) }
		if err := ValidateSKU(it.SKU); err != nil {
			bad.add(at("sku"), "must be 1 to 64 of A-Z a-z 0-9 . _ -")
		} else if first, dup := skus[it.SKU]; dup {
			bad.add(at("sku"), "%q is also items[%d]'s sku", it.SKU, first)
		} else {
			skus[it.SKU] = i
		}
		if n := utf8.RuneCountInString(it.Name); n < 1 || n > maxNameChars || !utf8.ValidString(it.Name) {
			bad.add(at("name"), "must be 1 to %d characters", maxNameChars)
		}
		if utf8.RuneCountInString(it.Description) > maxDescriptionLen {
			bad.add(at("description"), "must be at most %d characters", maxDescriptionLen)
		}
		cents, err := priceMinorUnits(it.Price, it.Currency)
		if err != nil {
			bad.add(at(err.field), "%s", err.msg)
		}
		if it.Units < 1 || it.Units > MaxItemUnits {
			bad.add(at("units"), "must be from 1 to %d", MaxItemUnits)
		}
		total += int64(it.Units)
		if it.ImageURL != "" {
			if u, err := url.Parse(it.ImageURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				len(it.ImageURL) > maxImageURLBytes || strings.ContainsAny(it.ImageURL, " \t\r\n") {
				bad.add(at("image_url"), "must be an absolute http or https URL of at most %d bytes", maxImageURLBytes)
			}
		}
		p.items = append(p.items, Item{
			ID: int32(i + 1), SKU: it.SKU, Name: it.Name, Description: it.Description, PriceCents: cents,
			Currency: it.Currency, ImageURL: it.ImageURL, Units: it.Units,
		})
	}
	if total > MaxSaleUnits {
		bad.add("items", "the items' units add up to %d; a sale has at most %d", total, MaxSaleUnits)
	}
	if err := bad.orNil(); err != nil {
		return plan{}, err
	}
	p.sale.UnitsTotal, p.sale.Items = int32(total), int32(len(p.items))
	p.sale.DefinitionSHA256 = p.digest()
	return p, nil
}

// digest identifies a definition as applied (defaults filled in, prices in
// minor units), so the same file applied twice is recognised.
func (p plan) digest() string {
	b, err := json.Marshal(struct {
		Sale  Sale
		Items []Item
	}{Sale{StartsAt: p.sale.StartsAt, EndsAt: p.sale.EndsAt, PerUserLimit: p.sale.PerUserLimit, HoldTTL: p.sale.HoldTTL}, p.items})
	if err != nil {
		panic(err) // plain values always encode
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type priceError struct{ field, msg string }

// maxPriceMinor is the largest price the items_price column holds.
const maxPriceMinor = 1<<31 - 1

// priceMinorUnits reads a decimal price in a currency's major unit as an
// integer count of its minor unit, refusing more decimals than the
// currency has (ISO 4217, as golang.org/x/text/currency knows it).
func priceMinorUnits(price, code string) (int32, *priceError) {
	cur, err := currency.ParseISO(code)
	if err != nil || !currencyForm.MatchString(code) {
		return 0, &priceError{"currency", fmt.Sprintf("must be an ISO 4217 code such as USD or EUR, got %q", code)}
	}
	switch {
	case strings.HasPrefix(price, "-") && decimalForm.MatchString(price[1:]):
		return 0, &priceError{"price", "must not be negative"}
	case !decimalForm.MatchString(price):
		return 0, &priceError{"price", fmt.Sprintf("must be a decimal string such as \"19.99\", got %q", price)}
	}
	scale, _ := currency.Standard.Rounding(cur)
	whole, frac, _ := strings.Cut(price, ".")
	if len(strings.TrimRight(frac, "0")) > scale {
		return 0, &priceError{"price", fmt.Sprintf("%s has %d decimal places", cur, scale)}
	}
	frac = (frac + strings.Repeat("0", scale))[:scale]
	minor, err := strconv.ParseInt(strings.TrimLeft(whole+frac, "0")+"0", 10, 64)
	if err != nil || minor/10 > maxPriceMinor {
		return 0, &priceError{"price", fmt.Sprintf("must be at most %s", FormatPrice(maxPriceMinor, cur.String()))}
	}
	return int32(minor / 10), nil
}

var (
	currencyForm = regexp.MustCompile(`^[A-Z]{3}$`)
	decimalForm  = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,12})?$`)
)

// FormatPrice writes a price in minor units as a decimal string with the
// currency's digits ("19.99" USD, "1999" JPY).
func FormatPrice(minor int32, code string) string {
	scale := 2
	if cur, err := currency.ParseISO(code); err == nil {
		scale, _ = currency.Standard.Rounding(cur)
	}
	if scale == 0 {
		return strconv.FormatInt(int64(minor), 10)
	}
	s := fmt.Sprintf("%0*d", scale+1, minor)
	return s[:len(s)-scale] + "." + s[len(s)-scale:]
}

// DefinitionOf is the definition a sale was made with, as Definition
// writes it: what GET returns and a file can apply again.
func DefinitionOf(s Sale, items []Item) Definition {
	d := Definition{StartsAt: s.StartsAt.UTC(), EndsAt: s.EndsAt.UTC(), PerUserLimit: s.PerUserLimit, HoldTTL: s.HoldTTL.String()}
	for _, it := range items {
		d.Items = append(d.Items, ItemDefinition{
			SKU: it.SKU, Name: it.Name, Description: it.Description, Price: FormatPrice(it.PriceCents, it.Currency),
			Currency: it.Currency, Units: it.Units, ImageURL: it.ImageURL,
		})
	}
	return d
}

// EncodeDefinition writes d as indented JSON, the form `server sale`
// prints and reads.
func EncodeDefinition(d Definition) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		panic(err) // plain values always encode
	}
	return b.Bytes()
}
