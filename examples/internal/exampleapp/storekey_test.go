package exampleapp

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
)

// -store-key and SMART_STORE_KEY give Config.StoreKeys: base64 keys,
// comma-separated, the first first; a malformed key is refused without
// being shown.
func TestSettingsStoreKey(t *testing.T) {
	k1, k2 := make([]byte, 32), make([]byte, 32)
	rand.Read(k1)
	rand.Read(k2)
	b1, b2 := base64.StdEncoding.EncodeToString(k1), base64.RawURLEncoding.EncodeToString(k2)

	s, err := parseSettings("test", nil, env(map[string]string{"SMART_STORE_KEY": b1 + ", " + b2}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	std := func(k []byte) core.Secret { return core.Secret(base64.StdEncoding.EncodeToString(k)) }
	if len(s.storeKeys) != 2 || s.storeKeys[0] != std(k1) || s.storeKeys[1] != std(k2) {
		t.Errorf("from the environment: %d keys, or not in order", len(s.storeKeys))
	}
	s, err = parseSettings("test", []string{"-store-key", b2}, env(map[string]string{"SMART_STORE_KEY": b1}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.storeKeys) != 1 || s.storeKeys[0] != std(k2) {
		t.Error("the flag does not win over the environment")
	}
	if s, _ := parseSettings("test", nil, env(nil), io.Discard); s.storeKeys != nil {
		t.Error("keys without -store-key")
	}

	short := base64.StdEncoding.EncodeToString(k1[:16])
	for _, tc := range []struct{ value, want string }{
		{short, "key 1 is 16 bytes"},
		{b1 + ",not base64!", "key 2 is not base64"},
		{b1 + ",", "key 2 is 0 bytes"},
	} {
		_, err := parseSettings("test", []string{"-store-key", tc.value}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.value, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), b1) || strings.Contains(err.Error(), short) {
			t.Errorf("the error shows a key: %v", err)
		}
	}
}

// The app runs and launches with -store-key.
func TestRunWithStoreKey(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	ehr, _ := runSandbox(t, "-store-key", base64.StdEncoding.EncodeToString(key))
	page := launchFromSandbox(t, ehr)
	if !strings.Contains(page, `<h1 id="patient-name">Daniel Adams</h1>`) {
		t.Errorf("the app page does not show pat-2:\n%s", page)
	}
}
