package exampleapp

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/fhir"
)

// The parts of the FHIR R4 resources the page shows. The library has no
// FHIR model: an app decodes into its own types, or uses a FHIR library
// with rc.FHIR().HTTPClient().

type humanName struct {
	Use    string   `json:"use"`
	Text   string   `json:"text"`
	Prefix []string `json:"prefix"`
	Given  []string `json:"given"`
	Family string   `json:"family"`
}

type identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
	Text   string   `json:"text"`
}

type patient struct {
	ID         string       `json:"id"`
	Name       []humanName  `json:"name"`
	Gender     string       `json:"gender"`
	BirthDate  string       `json:"birthDate"`
	Identifier []identifier `json:"identifier"`
}

type person struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id"`
	Name         []humanName `json:"name"`
}

type encounter struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Class  coding `json:"class"`
	Period struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"period"`
}

type observation struct {
	ID                string            `json:"id"`
	Status            string            `json:"status"`
	Category          []codeableConcept `json:"category"`
	Code              codeableConcept   `json:"code"`
	EffectiveDateTime string            `json:"effectiveDateTime"`
	ValueQuantity     *struct {
		Value *float64 `json:"value"`
		Unit  string   `json:"unit"`
	} `json:"valueQuantity"`
	ValueString          string           `json:"valueString"`
	ValueCodeableConcept *codeableConcept `json:"valueCodeableConcept"`
}

type condition struct {
	ID             string          `json:"id"`
	Code           codeableConcept `json:"code"`
	ClinicalStatus codeableConcept `json:"clinicalStatus"`
	OnsetDateTime  string          `json:"onsetDateTime"`
	RecordedDate   string          `json:"recordedDate"`
}

// chart is what the app page shows of one launch. A part that could not be
// read holds its error's sentence, and the page shows it in place.
type chart struct {
	Patient    patient
	User       person
	UserErr    string
	Encounter  *encounter
	EncErr     string
	Obs        []observation
	ObsErr     string
	Conditions []condition
	CondErr    string
}

// recentObservations is how many observations the page lists.
const recentObservations = 10

// loadChart reads the launch's patient, user, encounter, observations and
// conditions through rc, in parallel. Only a failure to read the patient
// fails the page.
func loadChart(ctx context.Context, rc *core.ReadyClient) (*chart, error) {
	c := &chart{}
	fc := rc.FHIR()
	var patientErr error
	var wg sync.WaitGroup
	wg.Go(func() { patientErr = fc.Read(ctx, rc.Patient().String(), &c.Patient) })
	if u := rc.User(); !u.IsZero() {
		wg.Go(func() { c.UserErr = message(fc.Read(ctx, u.String(), &c.User)) })
	}
	if e := rc.Encounter(); !e.IsZero() {
		wg.Go(func() {
			var enc encounter
			if c.EncErr = message(fc.Read(ctx, e.String(), &enc)); c.EncErr == "" {
				c.Encounter = &enc
			}
		})
	}
	patientID := rc.Patient().ID
	wg.Go(func() {
		// The newest first, as the server sorts them: the first page holds
		// them all.
		q := url.Values{"patient": {patientID}, "_sort": {"-date"}, "_count": {strconv.Itoa(recentObservations)}}
		for o, err := range fhir.Search[observation](ctx, fc, "Observation", q, fhir.Limit(recentObservations)) {
			if err != nil {
				c.ObsErr = message(err)
				break
			}
			c.Obs = append(c.Obs, o)
		}
	})
	wg.Go(func() {
		q := url.Values{"patient": {patientID}, "_count": {"50"}}
		for cond, err := range fhir.Search[condition](ctx, fc, "Condition", q, fhir.MaxPages(1)) {
			if err != nil {
				c.CondErr = message(err)
				break
			}
			c.Conditions = append(c.Conditions, cond)
		}
	})
	wg.Wait()
	if patientErr != nil {
		return nil, patientErr
	}
	return c, nil
}

// message is the sentence of err for the page: its Description, or the
// FHIR server's status, never its cause.
func message(err error) string {
	if err == nil {
		return ""
	}
	var e *core.Error
	if errors.As(err, &e) && e.Description != "" {
		return e.Description
	}
	var fe *fhir.Error
	if errors.As(err, &fe) && fe.StatusCode != 0 {
		return "the EHR answered " + strconv.Itoa(fe.StatusCode)
	}
	return "the EHR could not be read"
}

// The page's formatting functions.

func (n humanName) String() string {
	if n.Text != "" {
		return n.Text
	}
	return strings.Join(slices.Concat(n.Prefix, n.Given, []string{n.Family}), " ")
}

// displayName picks the official name, else the first one.
func displayName(names []humanName) string {
	for _, n := range names {
		if n.Use == "official" {
			return n.String()
		}
	}
	if len(names) > 0 {
		return names[0].String()
	}
	return "(no name)"
}

func (c codeableConcept) String() string {
	if c.Text != "" {
		return c.Text
	}
	for _, cd := range c.Coding {
		if cd.Display != "" {
			return cd.Display
		}
		if cd.Code != "" {
			return cd.Code
		}
	}
	return ""
}

// value formats an observation's value.
func (o observation) Value() string {
	switch {
	case o.ValueQuantity != nil && o.ValueQuantity.Value != nil:
		return strings.TrimSpace(strconv.FormatFloat(*o.ValueQuantity.Value, 'f', -1, 64) + " " + o.ValueQuantity.Unit)
	case o.ValueCodeableConcept != nil:
		return o.ValueCodeableConcept.String()
	}
	return o.ValueString
}

// date shortens a FHIR dateTime to its date and minute.
func date(s string) string {
	if len(s) >= 16 && s[10] == 'T' {
		return s[:10] + " " + s[11:16]
	}
	return s
}

// title capitalizes a FHIR code such as "female".
func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// encounterClass names an encounter's class (v3 ActCode).
func encounterClass(c coding) string {
	if c.Display != "" {
		return c.Display
	}
	switch c.Code {
	case "AMB":
		return "Ambulatory"
	case "EMER":
		return "Emergency"
	case "IMP":
		return "Inpatient"
	case "HH":
		return "Home health"
	case "VR":
		return "Virtual"
	}
	return c.Code
}
