package fhir

import "strings"

// r4ResourceTypes names the 146 resource types of FHIR R4 (4.0.1), as
// https://hl7.org/fhir/R4/resourcelist.html lists them, without the
// abstract Resource and DomainResource.
const r4ResourceTypes = `
Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment
AppointmentResponse AuditEvent Basic Binary BiologicallyDerivedProduct
BodyStructure Bundle CapabilityStatement CarePlan CareTeam CatalogEntry
ChargeItem ChargeItemDefinition Claim ClaimResponse ClinicalImpression
CodeSystem Communication CommunicationRequest CompartmentDefinition
Composition ConceptMap Condition Consent Contract Coverage
CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue
Device DeviceDefinition DeviceMetric DeviceRequest DeviceUseStatement
DiagnosticReport DocumentManifest DocumentReference
EffectEvidenceSynthesis Encounter Endpoint EnrollmentRequest
EnrollmentResponse EpisodeOfCare EventDefinition Evidence
EvidenceVariable ExampleScenario ExplanationOfBenefit
FamilyMemberHistory Flag Goal GraphDefinition Group GuidanceResponse
HealthcareService ImagingStudy Immunization ImmunizationEvaluation
ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice
Library Linkage List Location Measure MeasureReport Media Medication
MedicationAdministration MedicationDispense MedicationKnowledge
MedicationRequest MedicationStatement MedicinalProduct
MedicinalProductAuthorization MedicinalProductContraindication
MedicinalProductIndication MedicinalProductIngredient
MedicinalProductInteraction MedicinalProductManufactured
MedicinalProductPackaged MedicinalProductPharmaceutical
MedicinalProductUndesirableEffect MessageDefinition MessageHeader
MolecularSequence NamingSystem NutritionOrder Observation
ObservationDefinition OperationDefinition OperationOutcome Organization
OrganizationAffiliation Parameters Patient PaymentNotice
PaymentReconciliation Person PlanDefinition Practitioner
PractitionerRole Procedure Provenance Questionnaire
QuestionnaireResponse RelatedPerson RequestGroup ResearchDefinition
ResearchElementDefinition ResearchStudy ResearchSubject RiskAssessment
RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot
Specimen SpecimenDefinition StructureDefinition StructureMap
Subscription Substance SubstanceNucleicAcid SubstancePolymer
SubstanceProtein SubstanceReferenceInformation SubstanceSourceMaterial
SubstanceSpecification SupplyDelivery SupplyRequest Task
TerminologyCapabilities TestReport TestScript ValueSet
VerificationResult VisionPrescription
`

// standardOperations names the operations FHIR R4 defines that an app
// calls on an EHR's FHIR server: on patients' records ($everything,
// $lastn, $docref, $summary, $document, $stats, $match), on resources and
// their meta ($validate, $meta, $meta-add, $meta-delete), bulk data
// ($export), terminology ($expand, $lookup, $validate-code, $subsumes,
// $translate), questionnaires and plans ($populate, $apply), quality
// measures ($evaluate-measure, $data-requirements, $collect-data,
// $submit-data, $care-gaps) and messaging ($process-message). The list is
// fixed: an operation not on it is taken for an id, and kept out of error
// messages as ids are (see [Error.Error]).
const standardOperations = `
$everything $lastn $docref $summary $document $stats $match
$validate $meta $meta-add $meta-delete $export
$expand $lookup $validate-code $subsumes $translate
$populate $apply
$evaluate-measure $data-requirements $collect-data $submit-data $care-gaps
$process-message
`

// resourceTypes is r4ResourceTypes as a set; read-only.
var resourceTypes = wordSet(r4ResourceTypes)

// pathWords is the set of the other path segments that are FHIR's own
// words rather than ids, and so stay in error messages (see
// [requestWords]): the standard operations, _history and _search;
// read-only.
var pathWords = wordSet(standardOperations + " _history _search")

// wordSet splits s at white space into a set.
func wordSet(s string) map[string]bool {
	words := strings.Fields(s)
	set := make(map[string]bool, len(words))
	for _, w := range words {
		set[w] = true
	}
	return set
}
