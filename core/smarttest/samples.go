package smarttest

import (
	"fmt"
	"time"
)

// The sample data, with deterministic ids:
//
//	Patient       pat-1 Amy Shaw (female, 1987-02-20), pat-2 Daniel Adams
//	              (male, 1965-08-11), pat-3 Maria Garcia (female, 2001-11-03)
//	Practitioner  prac-1 Susan Clark, prac-2 Robert Lee
//	Encounter     enc-1, enc-2 (pat-1), enc-3 (pat-2), enc-4 (pat-3)
//	Observation   obs-1 … obs-12 (pat-1), obs-13 … obs-17 (pat-2),
//	              obs-18 … obs-20 (pat-3)
//	Condition     cond-1, cond-2 (pat-1), cond-3 (pat-2), cond-4 (pat-3)

// measurement is what an observation measures: its LOINC code, name and
// unit, and whether it is a laboratory result rather than a vital sign.
type measurement struct {
	loinc, text string
	unit, ucum  string
	lab         bool
}

var (
	heartRate   = measurement{"8867-4", "Heart rate", "beats/minute", "/min", false}
	bodyWeight  = measurement{"29463-7", "Body weight", "kg", "kg", false}
	bodyHeight  = measurement{"8302-2", "Body height", "cm", "cm", false}
	systolicBP  = measurement{"8480-6", "Systolic blood pressure", "mmHg", "mm[Hg]", false}
	temperature = measurement{"8310-5", "Body temperature", "C", "Cel", false}
	hbA1c       = measurement{"4548-4", "Hemoglobin A1c", "%", "%", true}
	glucose     = measurement{"2339-0", "Glucose", "mg/dL", "mg/dL", true}
)

// sampleObservation is one row of the observation table. No two share a
// date, so a search sorted by date has one right order.
type sampleObservation struct {
	measurement
	patient, encounter string
	value              float64
	date               string
}

func sampleObservations() []sampleObservation {
	return []sampleObservation{
		// pat-1: 12 observations, so _count=5 pages 5+5+2.
		{heartRate, "pat-1", "enc-1", 72, "2024-03-01T09:30:00Z"},
		{bodyWeight, "pat-1", "enc-1", 64.2, "2024-03-01T09:31:00Z"},
		{bodyHeight, "pat-1", "enc-1", 168, "2024-03-01T09:32:00Z"},
		{systolicBP, "pat-1", "enc-1", 128, "2024-03-01T09:33:00Z"},
		{temperature, "pat-1", "enc-1", 36.8, "2024-03-01T09:34:00Z"},
		{hbA1c, "pat-1", "enc-1", 5.6, "2024-03-01T10:15:00Z"},
		{heartRate, "pat-1", "enc-2", 75, "2024-06-12T14:00:00Z"},
		{bodyWeight, "pat-1", "enc-2", 63.8, "2024-06-12T14:01:00Z"},
		{systolicBP, "pat-1", "enc-2", 132, "2024-06-12T14:02:00Z"},
		{glucose, "pat-1", "enc-2", 94, "2024-06-12T14:40:00Z"},
		{heartRate, "pat-1", "enc-2", 70, "2024-06-12T16:00:00Z"},
		{heartRate, "pat-1", "enc-2", 68, "2024-06-13T08:00:00Z"},
		// pat-2: 5 observations.
		{heartRate, "pat-2", "enc-3", 80, "2024-04-20T11:00:00Z"},
		{bodyWeight, "pat-2", "enc-3", 88.5, "2024-04-20T11:01:00Z"},
		{systolicBP, "pat-2", "enc-3", 141, "2024-04-20T11:02:00Z"},
		{hbA1c, "pat-2", "enc-3", 7.2, "2024-04-20T11:45:00Z"},
		{glucose, "pat-2", "enc-3", 152, "2024-04-20T11:46:00Z"},
		// pat-3: 3 observations.
		{heartRate, "pat-3", "enc-4", 64, "2024-07-02T20:00:00Z"},
		{bodyWeight, "pat-3", "enc-4", 58, "2024-07-02T20:01:00Z"},
		{temperature, "pat-3", "enc-4", 37.1, "2024-07-02T20:02:00Z"},
	}
}

// newSampleStore returns a store holding the sample data, all at version 1.
func newSampleStore(now time.Time) *resourceStore {
	st := &resourceStore{byKey: map[string]*storedResource{}, next: map[string]int{}}
	add := func(typ string, v map[string]any) {
		id := st.newID(typ)
		st.put(typ, id, jsonValue(v), now)
	}
	type person struct{ given, family, gender, birth, mrn string }
	for _, p := range []person{
		{"Amy", "Shaw", "female", "1987-02-20", "MRN-1001"},
		{"Daniel", "Adams", "male", "1965-08-11", "MRN-1002"},
		{"Maria", "Garcia", "female", "2001-11-03", "MRN-1003"},
	} {
		add("Patient", map[string]any{
			"active": true,
			"identifier": []any{map[string]any{
				"use": "usual", "system": "http://hospital.example.org/mrn", "value": p.mrn,
			}},
			"name":      []any{map[string]any{"use": "official", "family": p.family, "given": []string{p.given}}},
			"gender":    p.gender,
			"birthDate": p.birth,
		})
	}
	for _, p := range []person{{given: "Susan", family: "Clark"}, {given: "Robert", family: "Lee"}} {
		add("Practitioner", map[string]any{
			"active": true,
			"name":   []any{map[string]any{"family": p.family, "given": []string{p.given}, "prefix": []string{"Dr."}}},
		})
	}
	type visit struct{ patient, class, status, start, end string }
	for _, v := range []visit{
		{"pat-1", "AMB", "finished", "2024-03-01T09:00:00Z", "2024-03-01T10:30:00Z"},
		{"pat-1", "AMB", "finished", "2024-06-12T13:30:00Z", "2024-06-13T09:00:00Z"},
		{"pat-2", "AMB", "finished", "2024-04-20T10:30:00Z", "2024-04-20T12:00:00Z"},
		{"pat-3", "IMP", "in-progress", "2024-07-02T19:00:00Z", ""},
	} {
		period := map[string]any{"start": v.start}
		if v.end != "" {
			period["end"] = v.end
		}
		add("Encounter", map[string]any{
			"status": v.status,
			"class": map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": v.class,
			},
			"subject":     map[string]any{"reference": "Patient/" + v.patient},
			"participant": []any{map[string]any{"individual": map[string]any{"reference": "Practitioner/prac-1"}}},
			"period":      period,
		})
	}
	for _, o := range sampleObservations() {
		category := "vital-signs"
		if o.lab {
			category = "laboratory"
		}
		add("Observation", map[string]any{
			"status": "final",
			"category": []any{map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category,
			}}}},
			"code": map[string]any{
				"coding": []any{map[string]any{"system": "http://loinc.org", "code": o.loinc, "display": o.text}},
				"text":   o.text,
			},
			"subject":           map[string]any{"reference": "Patient/" + o.patient},
			"encounter":         map[string]any{"reference": "Encounter/" + o.encounter},
			"effectiveDateTime": o.date,
			"valueQuantity": map[string]any{
				"value": o.value, "unit": o.unit, "system": "http://unitsofmeasure.org", "code": o.ucum,
			},
		})
	}
	type problem struct{ patient, snomed, text, onset string }
	for _, c := range []problem{
		{"pat-1", "59621000", "Essential hypertension", "2019-05-14"},
		{"pat-1", "195967001", "Asthma", "2001-09-01"},
		{"pat-2", "44054006", "Type 2 diabetes mellitus", "2015-02-03"},
		{"pat-3", "367498001", "Seasonal allergic rhinitis", "2016-04-22"},
	} {
		add("Condition", map[string]any{
			"category": []any{map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item",
			}}}},
			"clinicalStatus": map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active",
			}}},
			"code": map[string]any{
				"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": c.snomed, "display": c.text}},
				"text":   c.text,
			},
			"subject":       map[string]any{"reference": "Patient/" + c.patient},
			"onsetDateTime": c.onset,
			"recordedDate":  fmt.Sprintf("%sT00:00:00Z", c.onset),
			"verificationStatus": map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed",
			}}},
		})
	}
	return st
}
