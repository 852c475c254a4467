package sessions_test

import (
	"encoding/gob"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/fhirware/smart/sessions"
)

type appValue struct{ Name string }

func init() { gob.Register(appValue{}) }

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	deadline := time.Now().Add(time.Hour)
	cases := []struct {
		name   string
		values map[string]any
		own    bool // in Codec's own form, not gob
	}{
		{"empty", map[string]any{}, true},
		{"nil", nil, true},
		{"strings", map[string]any{"smart:session_id": "abc", "smart:latest_handle": "h1", "": "", "k\x00": "v\xff\x00"}, true},
		{"app int", map[string]any{"smart:session_id": "abc", "count": 3}, false},
		{"app struct", map[string]any{"smart:session_id": "abc", "user": appValue{"x"}}, false},
		{"app bytes", map[string]any{"b": []byte("x")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := sessions.Codec{}.Encode(deadline, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			if own := len(b) > 0 && b[0] == 0; own != tc.own {
				t.Errorf("own form %v, want %v", own, tc.own)
			}
			d, v, err := sessions.Codec{}.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Equal(deadline) {
				t.Errorf("deadline %v, want %v", d, deadline)
			}
			if len(tc.values) == 0 && len(v) == 0 {
				return
			}
			if !reflect.DeepEqual(v, tc.values) {
				t.Errorf("values %#v, want %#v", v, tc.values)
			}
		})
	}
}

func TestCodecZeroDeadline(t *testing.T) {
	t.Parallel()
	b, err := sessions.Codec{}.Encode(time.Time{}, map[string]any{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := sessions.Codec{}.Decode(b)
	if err != nil || !d.IsZero() {
		t.Fatalf("deadline %v, err %v; want the zero time", d, err)
	}
}

// Sessions saved with scs's default codec, before, are still read.
func TestCodecReadsGob(t *testing.T) {
	t.Parallel()
	deadline := time.Now().Add(time.Hour)
	values := map[string]any{"smart:session_id": "abc", "n": 1}
	b, err := scs.GobCodec{}.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	d, v, err := sessions.Codec{}.Decode(b)
	if err != nil || !d.Equal(deadline) || !reflect.DeepEqual(v, values) {
		t.Fatalf("Decode of gob: %v %v %v", d, v, err)
	}
}

func TestCodecCorrupt(t *testing.T) {
	t.Parallel()
	good, err := sessions.Codec{}.Encode(time.Now(), map[string]any{"key": "value", "k2": "v2"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(good) {
		if _, _, err := (sessions.Codec{}).Decode(good[:i]); err == nil && i > 0 {
			t.Errorf("Decode of the first %d of %d bytes: no error", i, len(good))
		}
	}
	if _, _, err := (sessions.Codec{}).Decode(append(good[:len(good):len(good)], 'x')); err == nil {
		t.Error("Decode with a trailing byte: no error")
	}
	huge := append([]byte(nil), good[:15]...)
	huge = append(huge, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
	if _, _, err := (sessions.Codec{}).Decode(huge); err == nil {
		t.Error("Decode with a huge count: no error")
	}
}

// A manager New makes uses Codec, and keeps the app's own values of other
// types through a request; a manager the app passes keeps its codec.
func TestNewCodec(t *testing.T) {
	t.Parallel()
	b := sessions.New(nil, sessions.WithCookies(sessions.CookieInsecureHTTP))
	sm := b.SessionManager()
	if _, ok := sm.Codec.(sessions.Codec); !ok {
		t.Fatalf("Codec %T, want sessions.Codec", sm.Codec)
	}
	sm.Store = memstore.NewWithCleanupInterval(0)
	h := b.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			id, _, err := b.LaunchID(r.Context())
			if err != nil {
				t.Error(err)
			}
			b.Launched(r.Context(), id, time.Minute)
			sm.Put(r.Context(), "user", appValue{"x"})
			sm.Put(r.Context(), "n", 7)
			return
		}
		id, ok := b.ID(r.Context())
		if !ok || id == "" || sm.Get(r.Context(), "user") != (appValue{"x"}) || sm.GetInt(r.Context(), "n") != 7 {
			t.Errorf("session read back: id %v, user %v, n %v", ok, sm.Get(r.Context(), "user"), sm.GetInt(r.Context(), "n"))
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/set", nil))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	h.ServeHTTP(httptest.NewRecorder(), req)

	own := scs.New()
	sessions.New(own)
	if _, ok := own.Codec.(scs.GobCodec); !ok {
		t.Errorf("a passed manager's Codec became %T", own.Codec)
	}
}
