// Package adaptertest is the behaviour suite of the SMART adapters, written
// once and run against every router: plain net/http, chi, echo and gin.
// Each router's test builds the app described by [Router] and calls [Run].
package adaptertest

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/fhirware/smart/adapters"
	"github.com/fhirware/smart/core"
)

// Router is one router under test.
type Router struct {
	// Mount builds the app from cfg with the router's Smart form mounted
	// at /fhir, and returns it. The app serves:
	//
	//	GET  /fhir/launch, GET /fhir/callback, POST /fhir/logout
	//	                        the Smart form's own routes
	//	GET  /fhir/api/patient  an app route of the Smart form:
	//	                        Patient(w, r, rc), rc from the router's accessor
	//	GET  /fhir/api/chart/ID an app route of the Smart form with the
	//	                        router's path parameter: Patient(w, r, rc)
	//	GET  /fhir/api/fail     an app route of the Smart form: Touch(r, cfg),
	//	                        then fail with 418 the router's way (an echo
	//	                        handler returns an error)
	//	GET  /open/whoami       outside the mount, behind the exported
	//	                        LoadReady: WhoAmI(w, r, rc)
	//	GET  /guarded/patient   outside the mount, behind the exported
	//	                        RequireReady: Patient(w, r, rc)
	Mount func(t testing.TB, cfg adapters.Config) http.Handler

	// New builds the router's Smart form with its error-returning
	// constructor and returns the error.
	New func(cfg adapters.Config) error

	// Must builds it with the panicking constructor.
	Must func(cfg adapters.Config)
}

// PatientAnswer is the JSON body of Patient.
type PatientAnswer struct {
	Patient string `json:"patient"` // the launch context's patient id
	Name    string `json:"name"`    // the family name read from the FHIR server
	Handle  string `json:"handle"`  // the launch handle
	Link    string `json:"link"`    // adapters.URL(r, "/fhir/api/patient")
}

// Patient answers with the launch's patient, read from the FHIR server with
// rc, the client the router's accessor gave. It answers 500 when rc is nil
// or is not the client adapters.FromContext finds in the request.
func Patient(w http.ResponseWriter, r *http.Request, rc *core.ReadyClient) {
	if rc == nil || adapters.FromContext(r.Context()) != rc {
		http.Error(w, "adaptertest: the router's accessor and adapters.FromContext disagree", http.StatusInternalServerError)
		return
	}
	var p struct {
		ID   string `json:"id"`
		Name []struct {
			Family string `json:"family"`
		} `json:"name"`
	}
	if err := rc.FHIR().Read(r.Context(), rc.Patient().String(), &p); err != nil {
		adapters.Error(w, r, err)
		return
	}
	a := PatientAnswer{Patient: rc.Patient().ID, Handle: rc.Handle(), Link: adapters.URL(r, "/fhir/api/patient")}
	if len(p.Name) > 0 {
		a.Name = p.Name[0].Family
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a)
}

// WhoAmI answers with the patient id of the launch, or "no launch", for a
// route behind LoadReady.
func WhoAmI(w http.ResponseWriter, r *http.Request, rc *core.ReadyClient) {
	if rc != adapters.FromContext(r.Context()) {
		http.Error(w, "adaptertest: the router's accessor and adapters.FromContext disagree", http.StatusInternalServerError)
		return
	}
	if rc == nil {
		w.Write([]byte("no launch"))
		return
	}
	w.Write([]byte("patient " + rc.Patient().ID))
}

// Touch changes the browser session, in the app's own session manager (the
// Config's), so that it must be saved with the response.
func Touch(r *http.Request, cfg adapters.Config) {
	cfg.SessionManager.Put(r.Context(), "adaptertest:touched", "yes")
}
