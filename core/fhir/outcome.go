package fhir

import "strings"

// OperationOutcome is the part of a FHIR OperationOutcome resource that
// explains a failed request. Its text is the server's own words, as sent:
// it may name the patient, and a hostile server may put anything in it.
type OperationOutcome struct {
	// ResourceType is "OperationOutcome".
	ResourceType string `json:"resourceType"`
	// Issue lists what went wrong, most important first.
	Issue []OutcomeIssue `json:"issue"`
}

// OutcomeIssue is one issue of an OperationOutcome.
type OutcomeIssue struct {
	// Severity is "fatal", "error", "warning" or "information".
	Severity string `json:"severity"`
	// Code is the issue type, such as "not-found", "invalid" or "conflict".
	Code string `json:"code"`
	// Diagnostics is the server's technical detail, or "".
	Diagnostics string `json:"diagnostics,omitempty"`
	// Details is the issue's coded detail; only its text is kept.
	Details *struct {
		Text string `json:"text,omitempty"`
	} `json:"details,omitempty"`
}

// String joins the issues' severity, code and diagnostics (or details
// text) on one line, as the server sent them. It is "" for a nil
// OperationOutcome.
func (o *OperationOutcome) String() string {
	if o == nil {
		return ""
	}
	parts := make([]string, 0, len(o.Issue))
	for _, is := range o.Issue {
		s := is.Severity + " " + is.Code
		if is.Diagnostics != "" {
			s += ": " + is.Diagnostics
		} else if is.Details != nil && is.Details.Text != "" {
			s += ": " + is.Details.Text
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
