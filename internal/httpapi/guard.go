package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	echojwt "github.com/labstack/echo-jwt/v4"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/sale"
)

// What stands between a client and the sale: who it may act for, how fast
// it may ask, and which browser origins may call.

var (
	errUnauthorized = errors.New("a valid bearer token is required")
	errForbidden    = errors.New("the token's user may not act for this user")
)

// RateLimits are token buckets kept in this process's memory: with several
// servers, a client's limit is per server it reaches. A rate of 0 turns a
// limit off.
type RateLimits struct {
	UserRate  float64 // checkouts per second per user id
	UserBurst int
	IPRate    float64 // requests per second per client address
	IPBurst   int
}

// limiter is one kind of token bucket, keyed by user id or address; nil
// allows everything.
type limiter struct {
	store *middleware.RateLimiterMemoryStore
	// retryAfter is when the next token arrives, in whole seconds.
	retryAfter string
}

func newLimiter(perSecond float64, burst int) *limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(perSecond))
	}
	// A bucket left alone until it is full again is a new one: forgetting
	// it then changes nothing, and keeps the map small when a client
	// sends a new user id with every request.
	refill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &limiter{
		store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: rate.Limit(perSecond), Burst: burst, ExpiresIn: refill + time.Second,
		}),
		retryAfter: strconv.Itoa(max(1, int(math.Ceil(1/perSecond)))),
	}
}

func (l *limiter) allow(id string) bool {
	if l == nil {
		return true
	}
	ok, _ := l.store.Allow(id) // the memory store never fails
	return ok
}

// refuse answers 429 with the wait before the next token.
func (l *limiter) refuse(c echo.Context) error {
	c.Response().Header().Set("Retry-After", l.retryAfter)
	return sale.ErrRateLimited
}

// limitAddress applies the per-address limit to every request but
// checkouts (whose handler applies it after reading the request, so that a
// refused checkout is still stored) and health checks.
func (s *Server) limitAddress(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Path() {
		case "/checkout", "/healthz", "/health", "/readyz":
			return next(c)
		}
		if !s.ipLimit.allow(c.RealIP()) {
			return s.ipLimit.refuse(c)
		}
		return next(c)
	}
}

// checkoutLimited reports whether a checkout is over a limit, setting
// Retry-After for the one it is over.
func (s *Server) checkoutLimited(c echo.Context, userID string) bool {
	for _, l := range []struct {
		lim *limiter
		id  string
	}{{s.userLimit, userID}, {s.ipLimit, c.RealIP()}} {
		if !l.lim.allow(l.id) {
			c.Response().Header().Set("Retry-After", l.lim.retryAfter)
			return true
		}
	}
	return false
}

// ipExtractor says which address is the client's: the connection's, or,
// from the listed proxies only, the last untrusted hop of X-Forwarded-For.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// userKey is where the authenticated user id is kept on the request.
const userKey = "auth_user"

// requireToken is Echo's JWT middleware with golang-jwt doing the checks
// (auth.Verifier); it puts the token's subject under userKey.
func requireToken(v *auth.Verifier) echo.MiddlewareFunc {
	return echojwt.WithConfig(echojwt.Config{
		ContextKey: userKey,
		ParseTokenFunc: func(_ echo.Context, token string) (any, error) {
			sub, err := v.Subject(token)
			if err != nil {
				return nil, err
			}
			// The user id the token names is held to what any other
			// user id is (length, control characters).
			if err := sale.ValidateUserID(sub); err != nil {
				return nil, fmt.Errorf("token's sub: %s", strings.TrimPrefix(err.Error(), sale.ErrInvalidRequest.Error()+": "))
			}
			return sub, nil
		},
		ErrorHandler: func(c echo.Context, err error) error {
			// RFC 6750 3: say which scheme, and whether a token was sent.
			challenge := `Bearer realm="flashsale"`
			var parseErr *echojwt.TokenParsingError
			if errors.As(err, &parseErr) {
				challenge += `, error="invalid_token"`
			}
			c.Response().Header().Set("WWW-Authenticate", challenge)
			return fmt.Errorf("%w: %s", errUnauthorized, strings.TrimPrefix(err.Error(), "code=401, message="))
		},
	})
}

// actingFor is the authenticated user, or "" when auth is off.
func actingFor(c echo.Context) string {
	sub, _ := c.Get(userKey).(string)
	return sub
}

// mayActFor refuses a request about userID from another user's token.
func mayActFor(c echo.Context, userID string) error {
	if sub := actingFor(c); sub != "" && sub != userID {
		return errForbidden
	}
	return nil
}

// cors lets the listed browser origins call the API and read the headers
// its answers carry.
func cors(origins []string) echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:  origins,
		AllowMethods:  []string{http.MethodGet, http.MethodHead, http.MethodPost},
		AllowHeaders:  []string{echo.HeaderContentType, echo.HeaderAuthorization, headerIdempotencyKey, echo.HeaderXRequestID},
		ExposeHeaders: []string{headerIdempotentReplayed, "Retry-After", echo.HeaderXRequestID, echo.HeaderWWWAuthenticate},
		MaxAge:        600,
	})
}

// maxHeaderBytes is the largest request header block answered normally.
// net/http cuts off at http.Server.MaxHeaderBytes (set higher) with a
// plain-text 431; between the two this answers the JSON shape.
const maxHeaderBytes = 64 << 10

func limitHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		n := len(c.Request().RequestURI)
		for k, vs := range c.Request().Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4 // ": " and CRLF
			}
		}
		if n > maxHeaderBytes {
			return errHeadersTooLarge
		}
		return next(c)
	}
}

var errHeadersTooLarge = errors.New("the request's headers are too large")

var errTransferEncoding = errors.New("a request body must be sent with Content-Length alone, " +
	"not with Transfer-Encoding (with Content-Length beside it, a proxy and this server could frame it differently)")

// refuseTransferEncoding refuses a request whose body comes chunked, and
// closes its connection. net/http removes a Content-Length sent beside
// Transfer-Encoding before any handler sees the request, so the two
// cannot be told apart here; every client sends a body this small (a few
// hundred bytes) with Content-Length. Whatever follows on the connection
// (a request smuggled in the body, or the rest of it) is never read as a
// request (RFC 9112 6.1: close the connection after such a request).
func refuseTransferEncoding(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if len(c.Request().TransferEncoding) > 0 {
			c.Response().Header().Set(echo.HeaderConnection, "close")
			return errTransferEncoding
		}
		return next(c)
	}
}
