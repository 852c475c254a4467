package fhir_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/fhir"
	"github.com/fhirware/smart/core/smarttest"
)

func TestCreateUpdatePatchDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	rc := env.c

	obs := fhirObservation{ResourceType: "Observation", Status: "preliminary"}
	obs.Subject.Reference = "Patient/pat-1"
	created, err := rc.Create(ctx, "Observation", obs)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.Status != http.StatusCreated || created.ID == "" || created.VersionID != "1" || created.ETag != `W/"1"` {
		t.Fatalf("Create = %+v, want 201, an id, version 1", created)
	}
	if want := env.base + "/Observation/" + created.ID + "/_history/1"; created.Location != want {
		t.Errorf("Location = %q, want %q", created.Location, want)
	}
	var back fhirObservation
	if err := json.Unmarshal(created.Resource, &back); err != nil || back.ID != created.ID || back.Status != "preliminary" {
		t.Errorf("Create's Resource = %s, %v", created.Resource, err)
	}
	post := env.requests("/fhir/Observation")
	if len(post) != 1 || post[0].Method != http.MethodPost {
		t.Fatalf("the EHR saw %v, want one POST /fhir/Observation", post)
	}
	if ct := post[0].Header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("Create's Content-Type = %q", ct)
	}
	ref := "Observation/" + created.ID

	// Update with the version just read.
	back.Status = "final"
	updated, err := rc.Update(ctx, ref, back, fhir.IfMatch(created.VersionID))
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if updated.Status != http.StatusOK || updated.ID != created.ID || updated.VersionID != "2" {
		t.Errorf("Update = %+v, want 200, version 2", updated)
	}
	put := env.requests("/fhir/" + ref)
	if len(put) != 1 || put[0].Header.Get("If-Match") != `W/"1"` || put[0].Header.Get("Content-Type") != "application/fhir+json" {
		t.Errorf("Update sent %v", put)
	}

	// An update against a stale version is refused, and changes nothing.
	back.Status = "cancelled"
	_, err = rc.Update(ctx, ref, back, fhir.IfMatch("1"))
	e := wantError(t, err, http.StatusPreconditionFailed)
	if e.Outcome == nil {
		t.Error("a 412 came without its OperationOutcome")
	}

	// Patch, conditional on the current version (as an ETag this time).
	patched, err := rc.Patch(ctx, ref, []fhir.PatchOp{
		{Op: "test", Path: "/status", Value: "final"},
		{Op: "replace", Path: "/status", Value: "amended"},
	}, fhir.IfMatch(updated.ETag))
	if err != nil {
		t.Fatalf("Patch: %v", err)
	}
	if patched.VersionID != "3" {
		t.Errorf("Patch = %+v, want version 3", patched)
	}
	got, err := fhir.Read[fhirObservation](ctx, rc, ref)
	if err != nil || got.Status != "amended" || got.Meta.VersionID != "3" {
		t.Errorf("after Patch: %+v, %v", got, err)
	}
	for _, r := range env.requests("/fhir/" + ref) {
		if r.Method == http.MethodPatch && r.Header.Get("Content-Type") != "application/json-patch+json" {
			t.Errorf("Patch's Content-Type = %q", r.Header.Get("Content-Type"))
		}
	}
	_, err = rc.Patch(ctx, ref, []fhir.PatchOp{{Op: "test", Path: "/status", Value: "final"}})
	wantError(t, err, http.StatusUnprocessableEntity)

	if err := rc.Delete(ctx, ref); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := fhir.Read[fhirObservation](ctx, rc, ref); !errors.Is(err, fhir.ErrNotFound) {
		t.Errorf("Read after Delete: %v, want resource_not_found", err)
	}
	wantError(t, rc.Delete(ctx, "Observation/never-was"), http.StatusNotFound)
}

func TestWritesRefuseBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	rc := env.c
	for name, err := range map[string]error{
		"create of a bad type":       second(rc.Create(ctx, "../Patient", map[string]any{})),
		"create of no JSON":          second(rc.Create(ctx, "Patient", func() {})),
		"update of a search":         second(rc.Update(ctx, "Patient?name=x", map[string]any{})),
		"update of a type":           second(rc.Update(ctx, "Patient", map[string]any{})),
		"update on another server":   second(rc.Update(ctx, "https://other.example/fhir/Patient/1", map[string]any{})),
		"patch of a path":            second(rc.Patch(ctx, "Patient/pat-1/../../x", nil)),
		"delete on another server":   rc.Delete(ctx, "https://other.example/fhir/Patient/1"),
		"batch entry without method": second(rc.Batch(ctx, []fhir.BundleEntry{{URL: "Patient/pat-1"}})),
		"batch entry without URL":    second(rc.Batch(ctx, []fhir.BundleEntry{{Method: "GET"}})),
		"batch entry elsewhere":      second(rc.Batch(ctx, []fhir.BundleEntry{{Method: "GET", URL: "https://other.example/fhir/Patient/1"}})),
		"batch entry with a dot":     second(rc.Transaction(ctx, []fhir.BundleEntry{{Method: "GET", URL: "Patient/../x"}})),
		"batch entry of no JSON":     second(rc.Batch(ctx, []fhir.BundleEntry{{Method: "POST", URL: "Patient", Resource: func() {}}})),
	} {
		var e *fhir.Error
		if !errors.As(err, &e) || e.StatusCode != 0 {
			t.Errorf("%s: %v, want an *Error refusing before any request", name, err)
		}
	}
	if n := env.ehr.Count(smarttest.EndpointFHIR); n != 0 {
		t.Errorf("bad input made %d FHIR requests", n)
	}

	// Absolute references under the base are fine.
	p := map[string]any{"resourceType": "Patient", "id": "pat-3", "gender": "female"}
	if _, err := rc.Update(ctx, env.base+"/Patient/pat-3", p); err != nil {
		t.Errorf("Update by absolute reference: %v", err)
	}
	// Raw JSON goes as it is; an update may create.
	res, err := rc.Update(ctx, "Patient/new-1", json.RawMessage(`{"resourceType":"Patient","id":"new-1"}`))
	if err != nil || res.Status != http.StatusCreated || res.ID != "new-1" {
		t.Errorf("Update creating Patient/new-1 = %+v, %v", res, err)
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	rc := env.c

	resps, err := rc.Batch(ctx, []fhir.BundleEntry{
		{Method: "GET", URL: "Patient/pat-1"},
		{Method: "POST", URL: "Observation", Resource: map[string]any{
			"resourceType": "Observation", "status": "final", "subject": map[string]any{"reference": "Patient/pat-1"},
		}},
		{Method: "GET", URL: "Patient/nobody"},
		{Method: "PUT", URL: "Condition/cond-1", IfMatch: "7", Resource: map[string]any{"resourceType": "Condition", "id": "cond-1"}},
		{Method: "PATCH", URL: "Condition/cond-2", Resource: []fhir.PatchOp{{Op: "add", Path: "/note", Value: []any{map[string]any{"text": "seen"}}}}},
		{Method: "DELETE", URL: "Condition/cond-3"},
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if len(resps) != 6 {
		t.Fatalf("Batch returned %d responses, want 6", len(resps))
	}
	wantStatus := []int{200, 201, 404, 412, 200, 204}
	for i, r := range resps {
		if r.Status != wantStatus[i] {
			t.Errorf("entry %d: status %d, want %d", i, r.Status, wantStatus[i])
		}
	}
	var p fhirPatient
	if err := json.Unmarshal(resps[0].Resource, &p); err != nil || p.ID != "pat-1" || resps[0].Err() != nil {
		t.Errorf("entry 0: %s, %v", resps[0].Resource, resps[0].Err())
	}
	if r := resps[1]; !strings.Contains(r.Location, "/fhir/Observation/") || r.ETag != `W/"1"` || r.Err() != nil {
		t.Errorf("entry 1: %+v", r)
	}
	if err := resps[2].Err(); !errors.Is(err, fhir.ErrNotFound) || resps[2].Outcome == nil {
		t.Errorf("entry 2: Err() = %v, Outcome %v", err, resps[2].Outcome)
	}
	wantError(t, resps[3].Err(), http.StatusPreconditionFailed)

	var cond struct {
		Note []struct{ Text string }
	}
	if err := rc.Read(ctx, "Condition/cond-2", &cond); err != nil || len(cond.Note) != 1 || cond.Note[0].Text != "seen" {
		t.Errorf("the PATCH entry did not apply: %+v, %v", cond, err)
	}
	if err := rc.Read(ctx, "Condition/cond-3", &cond); !errors.Is(err, fhir.ErrNotFound) {
		t.Errorf("the DELETE entry did not apply: %v", err)
	}
	posts := env.requests("/fhir")
	if len(posts) != 1 || posts[0].Method != http.MethodPost || posts[0].Header.Get("Content-Type") != "application/fhir+json" {
		t.Errorf("the batch went as %v, want one POST to the base URL", posts)
	}
}

func TestTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	rc := env.c
	count := func() int {
		n := 0
		for _, err := range rc.Search(ctx, "Observation", url.Values{"patient": {"pat-3"}}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	before := count()
	newObs := map[string]any{"resourceType": "Observation", "status": "final", "subject": map[string]any{"reference": "Patient/pat-3"}}

	// All or nothing: the failing update undoes the create.
	_, err := rc.Transaction(ctx, []fhir.BundleEntry{
		{Method: "POST", URL: "Observation", Resource: newObs},
		{Method: "PUT", URL: "Observation/obs-18", IfMatch: "9", Resource: map[string]any{"resourceType": "Observation", "id": "obs-18", "status": "final"}},
	})
	e := wantError(t, err, http.StatusPreconditionFailed)
	if e.Outcome == nil || !strings.Contains(e.Outcome.String(), "transaction entry 1") {
		t.Errorf("Outcome = %v", e.Outcome)
	}
	if n := count(); n != before {
		t.Errorf("a refused transaction left %d observations, want %d", n, before)
	}

	resps, err := rc.Transaction(ctx, []fhir.BundleEntry{
		{Method: "POST", URL: "Observation", Resource: newObs, FullURL: "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
		{Method: "PATCH", URL: "Observation/obs-18", IfMatch: `W/"1"`, Resource: []fhir.PatchOp{{Op: "replace", Path: "/status", Value: "amended"}}},
	})
	if err != nil {
		t.Fatalf("Transaction: %v", err)
	}
	if len(resps) != 2 || resps[0].Status != http.StatusCreated || resps[1].Status != http.StatusOK || resps[1].ETag != `W/"2"` {
		t.Errorf("Transaction = %+v", resps)
	}
	if n := count(); n != before+1 {
		t.Errorf("after the transaction: %d observations, want %d", n, before+1)
	}
}

// A hostile or broken server's answers to writes fail with the status
// they came with, or are kept as they were said.
func TestWritesHostileAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	answers := map[string]string{
		"/fhir/Patient/warned": `{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"informational","diagnostics":"stored"}]}`,
		"/fhir/Patient/broken": `{"resourceType":`,
	}
	c, rec := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fhir/Patient/warned" {
			w.Header().Set("ETag", `W/"7"`)
			w.Header().Set("Location", "https://ehr.test/fhir/Patient/warned/_history/7")
		}
		if r.URL.Path == "/fhir" { // a transaction gets a searchset; a batch, one entry
			body, _ := io.ReadAll(r.Body)
			if strings.Contains(string(body), `"type":"transaction"`) {
				io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","entry":[{}]}`)
				return
			}
			io.WriteString(w, `{"resourceType":"Bundle","type":"batch-response","entry":[{}]}`)
			return
		}
		io.WriteString(w, answers[r.URL.Path])
	})
	res, err := c.Update(ctx, "Patient/warned", map[string]any{"resourceType": "Patient", "id": "warned"})
	if err != nil || res.Outcome == nil || res.Outcome.Issue[0].Diagnostics != "stored" || res.Resource != nil || res.VersionID != "7" || res.ID != "warned" {
		t.Errorf("Update answered by an OperationOutcome = %+v, %v", res, err)
	}
	_, err = c.Update(ctx, "Patient/broken", map[string]any{"resourceType": "Patient", "id": "broken"})
	if e := wantError(t, err, http.StatusOK); e.Method != "PUT" || e.Resource != "Patient" {
		t.Errorf("Update answered by broken JSON: %+v", e)
	}
	_, err = c.Transaction(ctx, []fhir.BundleEntry{{Method: "GET", URL: "Patient/1"}})
	if e := wantError(t, err, http.StatusOK); e.Method != "POST" || e.Resource != "Bundle" || !strings.Contains(err.Error(), "not a transaction-response Bundle") {
		t.Errorf("Transaction answered by a searchset: %v", err)
	}
	_, err = c.Batch(ctx, []fhir.BundleEntry{{Method: "GET", URL: "Patient/1"}, {Method: "GET", URL: "Patient/2"}})
	if wantError(t, err, http.StatusOK); !strings.Contains(err.Error(), "1 entries for 2") {
		t.Errorf("Batch answered with too few entries: %v", err)
	}
	resps, err := c.Batch(ctx, []fhir.BundleEntry{{Method: "GET", URL: "Patient/1"}})
	if err != nil || resps[0].Status != 0 || resps[0].Err() == nil {
		t.Errorf("an entry answered without a status = %+v, %v; want an error from Err", resps, err)
	}
	for _, r := range rec.requests("") {
		if r.Method == http.MethodPut && (r.Header.Get("Prefer") != "return=representation" || r.Header.Get("Accept") != "application/fhir+json") {
			t.Errorf("PUT went with %v", r.Header)
		}
	}
}
