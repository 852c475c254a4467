package readme_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/chiware"
	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
	"github.com/fhirware/smart/echoware"
	"github.com/fhirware/smart/ginware"
	"github.com/fhirware/smart/sessions"
	"github.com/fhirware/smart/sessions/goredislock"
	"github.com/fhirware/smart/sessions/pgxlock"
	"github.com/fhirware/smart/sessions/storagetest"
)

// Patient is the part of a FHIR Patient the app reads.
type Patient struct {
	ID        string `json:"id"`
	BirthDate string `json:"birthDate"`
	Name      []struct {
		Family string   `json:"family"`
		Given  []string `json:"given"`
	} `json:"name"`
}

// Observation is the part of a FHIR Observation the app reads.
type Observation struct {
	ID   string `json:"id"`
	Code struct {
		Text string `json:"text"`
	} `json:"code"`
}

// README: the configuration.
func config() adapters.Config {
	cfg := adapters.Config{
		Config: core.Config{
			ClientID:    "my-app",
			CallbackURL: "https://app.example.com/fhir/callback",
			RedirectURL: "/fhir/",
			Issuers:     []core.Issuer{{URL: "https://ehr.example.com/fhir/r4"}},
		},
	}
	return cfg
}

// README: chi.
func Example_chi() {
	cfg := config()
	s := chiware.Smart(cfg) // GET /launch, GET /callback, POST /logout
	s.Get("/", func(w http.ResponseWriter, r *http.Request) {
		rc := chiware.ReadyClient(r)
		var p Patient
		if err := rc.Patient().Read(r.Context(), &p); err != nil {
			s.Adapter().Error(w, r, err) // 502 when the EHR fails
			return
		}
		fmt.Fprintf(w, "%s, born %s", p.Name[0].Family, p.BirthDate)
	})
	r := chi.NewRouter()
	r.Mount("/fhir", s)
	http.ListenAndServe(":8080", r)
}

// README: echo.
func Example_echo() {
	cfg := config()
	e := echo.New()
	s := echoware.Smart(e.Group("/fhir"), cfg) // GET /launch, GET /callback, POST /logout
	s.GET("/", func(c echo.Context) error {
		rc := echoware.ReadyClient(c)
		var p Patient
		if err := rc.Patient().Read(c.Request().Context(), &p); err != nil {
			s.Adapter().Error(c.Response(), c.Request(), err) // 502 when the EHR fails
			return nil
		}
		return c.String(http.StatusOK, p.Name[0].Family+", born "+p.BirthDate)
	})
	e.Start(":8080")
}

// README: gin.
func Example_gin() {
	cfg := config()
	r := gin.New()
	s := ginware.Smart(r.Group("/fhir"), cfg) // GET /launch, GET /callback, POST /logout
	s.GET("/", func(c *gin.Context) {
		rc := ginware.ReadyClient(c)
		var p Patient
		if err := rc.Patient().Read(c.Request.Context(), &p); err != nil {
			s.Adapter().Error(c.Writer, c.Request, err) // 502 when the EHR fails
			return
		}
		c.String(http.StatusOK, "%s, born %s", p.Name[0].Family, p.BirthDate)
	})
	r.Run(":8080")
}

// README: links that keep the launch handle, and FHIR search.
func Example_search() {
	s := chiware.Smart(config())
	s.Get("/observations", func(w http.ResponseWriter, r *http.Request) {
		ctx, rc := r.Context(), chiware.ReadyClient(r)
		q := url.Values{"patient": {rc.Patient().ID()}, "_count": {"50"}}
		for obs, err := range core.Search[Observation](ctx, rc, "Observation", q) {
			if err != nil {
				s.Adapter().Error(w, r, err)
				return
			}
			link := chiware.URL(r, "/fhir/observations/"+obs.ID) // keeps this tab's launch
			fmt.Fprintf(w, "<a href=%q>%s</a>\n", link, obs.Code.Text)
		}
	})
}

// README: Redis or Valkey.
func Example_redis() {
	cfg := config()
	s := chiware.Smart(cfg)
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	s.Adapter().Browser().SessionManager().Store = goredisstore.New(client)
}

// README: PostgreSQL.
func Example_postgres() {
	ctx := context.Background()
	s := chiware.Smart(config())
	pool, err := pgxpool.New(ctx, "postgres://app@db.example.com:5432/app")
	if err != nil {
		panic(err)
	}
	s.Adapter().Browser().SessionManager().Store = pgxstore.New(pool)
}

// README: several instances on Redis or Valkey.
func Example_severalInstancesRedis() {
	cfg := config()
	client := redis.NewClient(&redis.Options{Addr: "valkey.internal:6379", ContextTimeoutEnabled: true,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	cfg.Locker = goredislock.New(client)
	s := chiware.Smart(cfg)
	s.Adapter().Browser().SessionManager().Store = goredisstore.New(client)
}

// README: several instances on PostgreSQL.
func Example_severalInstancesPostgres() {
	ctx := context.Background()
	cfg := config()
	pool, err := pgxpool.New(ctx, "postgres://app@db.example.com:5432/app")
	if err != nil {
		panic(err)
	}
	locker := pgxlock.New(pool)
	if err := locker.CreateTable(ctx); err != nil { // or run pgxlock.Schema with your migrations
		panic(err)
	}
	cfg.Locker = locker
	s := chiware.Smart(cfg)
	s.Adapter().Browser().SessionManager().Store = pgxstore.New(pool)
}

// README: an app the EHR shows in an iframe.
func Example_iframe() {
	cfg := config()

	cfg.Cookies = adapters.CookieEmbeddedInEHR // SameSite=None; Secure; Partitioned
	s := chiware.Smart(cfg)
	_ = s
}

// newRouter is the app under test of TestPatientPage: the chi wiring of
// the README.
func newRouter(cfg adapters.Config) http.Handler {
	s := chiware.Smart(cfg)
	s.Get("/", func(w http.ResponseWriter, r *http.Request) {
		var p Patient
		if err := chiware.ReadyClient(r).Patient().Read(r.Context(), &p); err != nil {
			s.Adapter().Error(w, r, err)
			return
		}
		fmt.Fprintf(w, "%s, born %s", p.Name[0].Family, p.BirthDate)
	})
	r := chi.NewRouter()
	r.Mount("/fhir", s)
	return r
}

// README: testing an app with smarttest.
func TestPatientPage(t *testing.T) {
	ehr := smarttest.NewServer(smarttest.Options{})
	t.Cleanup(ehr.Close)
	ehr.RegisterClient(smarttest.Client{ID: "my-app"})

	app := httptest.NewUnstartedServer(nil)
	t.Cleanup(app.Close)
	app.Config.Handler = newRouter(adapters.Config{
		Config: core.Config{
			ClientID:          "my-app",
			CallbackURL:       "http://" + app.Listener.Addr().String() + "/fhir/callback",
			RedirectURL:       "/fhir/",
			Issuers:           []core.Issuer{{URL: ehr.FHIRBaseURL()}},
			AllowInsecureHTTP: true, // smarttest serves plain http on loopback
		},
		Cookies: adapters.CookieInsecureHTTP,
	})
	app.Start()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar} // follows the redirects, keeps the cookie
	launch := ehr.EHRLaunchURL(app.URL+"/fhir/launch", smarttest.LaunchContext{Patient: "pat-1"})
	resp, err := browser.Get(launch) // launch, authorize, callback, app page
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if got := string(body); got != "Shaw, born 1987-02-20" {
		t.Errorf("app page = %q", got)
	}
}

// README: running the storage contract against your own backend.
func TestStorage(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) core.Storage {
		// Your backend here; each test gets its own prefix.
		return sessions.NewStorage(memstore.NewWithCleanupInterval(0)).WithPrefix(t.Name() + ":")
	})
}
