package core

import "strings"

// OperationOutcome is the part of a FHIR OperationOutcome resource that
// explains a failed request.
type OperationOutcome struct {
	ResourceType string         `json:"resourceType"`
	Issue        []OutcomeIssue `json:"issue"`
}

// OutcomeIssue is one issue of an OperationOutcome.
type OutcomeIssue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics,omitempty"`
	Details     *struct {
		Text string `json:"text,omitempty"`
	} `json:"details,omitempty"`
}

// String joins the issues' severity, code and diagnostics on one line.
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
