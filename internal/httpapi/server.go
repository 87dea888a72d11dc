// Package httpapi is the REST API: it parses requests, calls the sale
// service and writes JSON. No business rule lives here.
package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/readshare"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/salewatch"
)

// Server is the Echo application with its dependencies.
type Server struct {
	echo  *echo.Echo
	sales *sale.Service
	// webhooks: nil when events are not delivered (admin_events.go).
	webhooks  Webhooks
	version   string
	log       *slog.Logger
	userLimit *limiter
	ipLimit   *limiter
	live      liveStreams // events.go
	// authed is the middleware of the routes that act for a user.
	authed []echo.MiddlewareFunc
	// current is the process's shared read of the current sale, asked
	// for answers at most readMaxAge old.
	current    *salewatch.Current
	readMaxAge time.Duration
	// currentEncoded is GET /sales/current's body for current's latest
	// snapshot.
	currentEncoded atomic.Pointer[encodedSale]
	// answers shares the encoded answers of the other polled reads (a
	// sale by id, a page of items) for readMaxAge; nil: off.
	answers *readshare.Reads
}

// Options are what New needs besides the sale service. The zero value of
// each guard (auth, limits, CORS, proxies) turns it off.
type Options struct {
	Version string
	Log     *slog.Logger
	// Auth, when set, makes checkout, purchase and /users/{id}/... need a
	// bearer token whose subject is the user.
	Auth   *auth.Verifier
	Limits RateLimits
	// TrustedProxies are the only peers whose X-Forwarded-For is believed.
	TrustedProxies []*net.IPNet
	CORSOrigins    []string
	// EventHeartbeat is how often an idle event stream gets a comment;
	// default 15s.
	EventHeartbeat time.Duration
	// Middleware runs outside all of the API's own, after routing (so
	// c.Path() is the route) and after the error handler has answered (so
	// the status is the one sent): metrics.
	Middleware []echo.MiddlewareFunc
	// ReadMaxAge is how old a sale's counts or a page of items may be when
	// answered (READ_MAX_AGE): clients polling them share one database
	// read and one encoding per this long. 0 reads and encodes every time.
	ReadMaxAge time.Duration
	// Current is the process's shared read of the current sale, which the
	// metrics use too; nil: New makes one of its own.
	Current *salewatch.Current
	// Admin turns the admin API on (admin.go).
	Admin AdminAccess
	// Webhooks redeliver events and report their deliveries (nil: events
	// are listed, not delivered).
	Webhooks Webhooks
}

// ConfigOptions are the Options the settings ask for: the guards (auth,
// rate limits, CORS, trusted proxies) as cmd/server and cmd/httpceiling
// both serve them. Settings read from files (keys) are checked here, so a
// caller does it before connecting to anything.
func ConfigOptions(cfg config.Config, version string, log *slog.Logger) (Options, error) {
	verifier, err := auth.New(cfg.AuthJWTSecret, cfg.AuthJWTPublicKey)
	if err != nil {
		return Options{}, err
	}
	proxies, err := config.ParseNets(cfg.TrustedProxies)
	if err != nil {
		return Options{}, fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	tokens, err := auth.ParseAdminTokens(cfg.AdminTokens)
	if err != nil {
		return Options{}, err
	}
	return Options{
		Version: version, Log: log, Auth: verifier, CORSOrigins: cfg.CORSAllowedOrigins, TrustedProxies: proxies,
		ReadMaxAge: cfg.ReadMaxAge,
		Admin:      AdminAccess{Tokens: tokens, JWT: verifier, Role: cfg.AdminJWTRole},
		Limits: RateLimits{
			UserRate: cfg.RateLimitUser, UserBurst: cfg.RateLimitUserBurst, IPRate: cfg.RateLimitIP, IPBurst: cfg.RateLimitIPBurst,
		},
	}, nil
}

// maxBody bounds request bodies: the largest valid one is a few hundred bytes.
const maxBody = "16K"

// newStack is the Echo application with every middleware and no route:
// New adds the API's routes, NewSoldOut (ceiling.go) its one canned answer,
// so the HTTP ceiling the benchmark measures runs exactly this stack.
func newStack(sales *sale.Service, opts Options) *Server {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{
		echo: e, sales: sales, version: opts.Version, log: opts.Log,
		userLimit:  newLimiter(opts.Limits.UserRate, opts.Limits.UserBurst),
		ipLimit:    newLimiter(opts.Limits.IPRate, opts.Limits.IPBurst),
		answers:    readshare.New(opts.ReadMaxAge),
		readMaxAge: opts.ReadMaxAge,
	}
	e.HTTPErrorHandler = s.handleError
	e.JSONSerializer = jsonSerializer{}
	e.IPExtractor = ipExtractor(opts.TrustedProxies)

	e.Use(opts.Middleware...)
	e.Use(dropOddRequestID)
	e.Use(middleware.RequestID())
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic", "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		// The path only: a query string can carry a live purchase code.
		LogMethod: true, LogURIPath: true, LogStatus: true, LogLatency: true, LogRequestID: true, LogError: true,
		HandleError: true, // the error handler has run, so the status is the one sent
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := requestLogLevel(v)
			if !s.log.Enabled(c.Request().Context(), level) {
				return nil
			}
			attrs := []slog.Attr{
				slog.String("method", v.Method), slog.String("path", v.URIPath), slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency), slog.String("request_id", v.RequestID),
			}
			if v.Error != nil && v.Status >= 500 {
				attrs = append(attrs, slog.String("err", v.Error.Error()))
			}
			s.log.LogAttrs(c.Request().Context(), level, "request", attrs...)
			return nil
		},
	}))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: maxBody, Skipper: isAdminPath}))
	e.Use(limitHeaders)
	e.Use(refuseTransferEncoding)
	e.Use(noTrailingSlash)
	if len(opts.CORSOrigins) > 0 {
		e.Use(cors(opts.CORSOrigins))
	}
	e.Use(s.limitAddress)
	if opts.Auth != nil {
		s.authed = append(s.authed, requireToken(opts.Auth))
	}
	return s
}

// New builds the router with its middleware.
func New(sales *sale.Service, opts Options) *Server {
	s := newStack(sales, opts)
	s.current = opts.Current
	if s.current == nil {
		s.current = salewatch.NewCurrent(sales)
	}
	s.live = newLiveStreams(salewatch.NewWatcher(s.current, time.Second), opts.EventHeartbeat)
	e, authed := s.echo, s.authed

	// HEAD wherever GET is: uptime checkers use it. net/http sends no body
	// for HEAD.
	get := func(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
		e.Match([]string{http.MethodGet, http.MethodHead}, path, h, m...)
	}
	get("/", s.index)
	get("/openapi.json", s.openapi)
	get("/healthz", s.healthz)
	get("/health", s.healthz) // alias: see aliases.go
	get("/readyz", s.readyz)
	e.POST("/checkout", s.checkout, authed...)
	e.POST("/purchase", s.purchase, authed...)
	get("/sales/current", s.currentSale)
	get("/sales/current/items", s.currentItems)
	get("/sales/current/events", s.saleEvents)
	get("/page/:file", s.pageFile)
	get("/sales/:sale_id", s.saleByID)
	get("/users/:user_id/purchases", s.userPurchases, authed...)
	get("/items/:sale_id/:item_id/image.svg", s.itemImage)
	s.webhooks = opts.Webhooks
	s.adminRoutes(opts.Admin)
	return s
}

// slowRequest is the latency from which an answered request is logged at
// info level.
const slowRequest = time.Second

// requestLogLevel: a request answered as it should be (2xx, 4xx) is
// logged at debug level unless it was slow: at a sale's request rate those
// lines cost CPU and disk, and say nothing the database (every checkout
// attempt is stored) and the metrics do not. Failures are always logged:
// 503 (database away, no sale yet) as a warning, other 5xx as errors.
func requestLogLevel(v middleware.RequestLoggerValues) slog.Level {
	switch {
	case v.Status == http.StatusServiceUnavailable:
		return slog.LevelWarn
	case v.Status >= 500:
		return slog.LevelError
	case v.Latency >= slowRequest:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// noTrailingSlash answers 404 to a path ending in "/" (but "/" itself),
// whatever route it would reach: /sales/1/ is not /sales/1, and one
// resource has one path. It is counted as unmatched, as a path no route
// matches is.
func noTrailingSlash(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p := c.Request().URL.Path; len(p) > 1 && p[len(p)-1] == '/' {
			c.SetPath("")
			return echo.ErrNotFound
		}
		return next(c)
	}
}

// maxRequestIDBytes bounds a client's X-Request-ID, which is echoed and
// logged: 128 printable ASCII bytes hold any UUID or trace id.
const maxRequestIDBytes = 128

// dropOddRequestID removes an X-Request-ID that is too long or not
// printable ASCII, so that a new one is generated instead of echoing and
// logging what the client sent.
func dropOddRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if id := h.Get(echo.HeaderXRequestID); id != "" && (len(id) > maxRequestIDBytes || !printableASCII(id)) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// ServeHTTP makes Server usable with httptest and any http.Server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// HTTPServer returns an http.Server with timeouts, so a slow or stalled
// client cannot hold a connection or a goroutine forever.
func (s *Server) HTTPServer(addr string) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Above maxHeaderBytes, so that limitHeaders answers in JSON.
		MaxHeaderBytes: 1 << 20,
	}
	// Shutdown waits for every handler; event streams would never end.
	srv.RegisterOnShutdown(s.StopStreams)
	return srv
}

// jsonSerializer is Echo's default without HTML escaping: the API is not
// HTML, and "&" reads better than "\u0026" in a URL template.
type jsonSerializer struct{ echo.DefaultJSONSerializer }

func (jsonSerializer) Serialize(c echo.Context, i any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}
