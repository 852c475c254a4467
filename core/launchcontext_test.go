package core_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
)

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := core.Secret("eyJhbGciOi.secret.token")
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "token", s)
	out := fmt.Sprintf("%v %s %+v %#v", s, s, struct{ T core.Secret }{s}, s) + b.String()
	if strings.Contains(out, "secret") {
		t.Fatalf("a Secret printed its value: %s", out)
	}
	if core.Secret("").String() != "" {
		t.Error("empty Secret should print empty")
	}
}
