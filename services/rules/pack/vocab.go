package pack

import (
	"slices"
	"strings"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// DefaultLevelNames are the framework's names for the levels, used when a
// pack does not rename them.
var DefaultLevelNames = map[Level]string{
	Level1:  "Universal",
	Level2:  "Universal Plus",
	Level3a: "Early Intervention",
	Level3b: "Intensive Intervention",
	Level4:  "Remedial",
}

// DefaultLevelNamesCy are the Welsh names of the levels, used when a
// bilingual pack does not rename them.
var DefaultLevelNamesCy = map[Level]string{
	Level1:  "Cyffredinol",
	Level2:  "Cyffredinol a Mwy",
	Level3a: "Ymyrraeth Gynnar",
	Level3b: "Ymyrraeth Ddwys",
	Level4:  "Adferol",
}

// BuiltinAgencies is the agency-role vocabulary used when a pack does not
// declare its own. Ids are roles, not named teams: each partnership's
// directory maps a role to the team that is actually contacted.
var BuiltinAgencies = map[string]string{
	"childrens_social_care":            "Children's social care (front door, duty and assessment, child protection)",
	"police":                           "Police (public protection unit)",
	"health_visitor":                   "Health visitor",
	"school_nursing":                   "School nursing",
	"gp":                               "GP",
	"paediatrics":                      "Paediatrics (child protection medical)",
	"midwifery":                        "Midwifery (safeguarding midwife)",
	"camhs":                            "Child and adolescent mental health services (CAMHS)",
	"school_dsl":                       "School designated safeguarding lead",
	"education_welfare":                "Education welfare service",
	"early_help":                       "Early help / Team Around the Family / intensive family support",
	"youth_justice":                    "Youth justice service",
	"housing":                          "Housing and homelessness service",
	"domestic_abuse_services":          "Domestic abuse services (IDVA)",
	"marac_coordinator":                "MARAC coordinator",
	"substance_misuse_services":        "Substance misuse services",
	"adult_mental_health":              "Adult mental health services",
	"adult_learning_disability":        "Adult learning disability services",
	"third_sector_family_support":      "Third sector family support",
	"young_carers_service":             "Young carers service",
	"prevent":                          "Prevent / Channel panel",
	"exploitation_panel":               "Multi-agency child exploitation (MACE) panel",
	"national_referral_mechanism":      "National Referral Mechanism (modern slavery), via a first responder",
	"harmful_sexual_behaviour_service": "Harmful sexual behaviour service (AIM assessment)",
}

// BuiltinAgenciesCy is BuiltinAgencies in Welsh.
var BuiltinAgenciesCy = map[string]string{
	"childrens_social_care":            "Gwasanaethau cymdeithasol i blant (drws ffrynt, dyletswydd ac asesu, amddiffyn plant)",
	"police":                           "Yr heddlu (uned diogelu'r cyhoedd)",
	"health_visitor":                   "Ymwelydd iechyd",
	"school_nursing":                   "Nyrsio ysgol",
	"gp":                               "Meddyg teulu",
	"paediatrics":                      "Pediatreg (archwiliad meddygol amddiffyn plant)",
	"midwifery":                        "Bydwreigiaeth (bydwraig ddiogelu)",
	"camhs":                            "Gwasanaethau iechyd meddwl plant a phobl ifanc (CAMHS)",
	"school_dsl":                       "Person diogelu dynodedig yr ysgol",
	"education_welfare":                "Gwasanaeth lles addysg",
	"early_help":                       "Cymorth cynnar / Tîm o Amgylch y Teulu / cymorth dwys i deuluoedd",
	"youth_justice":                    "Gwasanaeth cyfiawnder ieuenctid",
	"housing":                          "Gwasanaeth tai a digartrefedd",
	"domestic_abuse_services":          "Gwasanaethau cam-drin domestig (IDVA)",
	"marac_coordinator":                "Cydlynydd MARAC",
	"substance_misuse_services":        "Gwasanaethau camddefnyddio sylweddau",
	"adult_mental_health":              "Gwasanaethau iechyd meddwl oedolion",
	"adult_learning_disability":        "Gwasanaethau anabledd dysgu oedolion",
	"third_sector_family_support":      "Cymorth i deuluoedd gan y trydydd sector",
	"young_carers_service":             "Gwasanaeth gofalwyr ifanc",
	"prevent":                          "Prevent / panel Channel",
	"exploitation_panel":               "Panel amlasiantaethol camfanteisio ar blant (MACE)",
	"national_referral_mechanism":      "Y Mecanwaith Atgyfeirio Cenedlaethol (caethwasiaeth fodern), drwy ymatebydd cyntaf",
	"harmful_sexual_behaviour_service": "Gwasanaeth ymddygiad rhywiol niweidiol (asesiad AIM)",
}

// BuiltinPathways is the pathway vocabulary used when a pack does not declare
// its own.
var BuiltinPathways = map[string]string{
	"nfa_advice":               "No further action by the hub: information, advice and signposting",
	"single_agency":            "Single-agency support (universal plus)",
	"taf":                      "Team Around the Family (early help, named key worker)",
	"intensive_family_support": "Intensive family support (key worker, multi-agency plan)",
	"assessment":               "Child and family assessment by children's social care",
	"pre_birth_assessment":     "Pre-birth assessment",
	"strategy_discussion":      "Strategy discussion (significant harm suspected)",
	"immediate_protection":     "Immediate protective action",
	"marac":                    "Referral to the multi-agency risk assessment conference (MARAC)",
	"operation_encompass":      "Operation Encompass notification to the school",
	"return_home_interview":    "Return home interview after a missing episode",
	"exploitation_screening":   "Exploitation risk screening and MACE panel",
	"prevent_referral":         "Prevent referral (Channel panel)",
	"inform_allocated_worker":  "Pass to the allocated worker of the open case",
}

// BuiltinPathwaysCy is BuiltinPathways in Welsh.
var BuiltinPathwaysCy = map[string]string{
	"nfa_advice":               "Dim camau pellach gan yr hyb: gwybodaeth, cyngor a chyfeirio",
	"single_agency":            "Cymorth gan un asiantaeth (cyffredinol a mwy)",
	"taf":                      "Tîm o Amgylch y Teulu (cymorth cynnar, gweithiwr allweddol penodol)",
	"intensive_family_support": "Cymorth dwys i deuluoedd (gweithiwr allweddol, cynllun amlasiantaethol)",
	"assessment":               "Asesiad o'r plentyn a'r teulu gan y gwasanaethau cymdeithasol i blant",
	"pre_birth_assessment":     "Asesiad cyn geni",
	"strategy_discussion":      "Trafodaeth strategaeth (amheuir niwed sylweddol)",
	"immediate_protection":     "Camau amddiffyn ar unwaith",
	"marac":                    "Atgyfeirio i'r gynhadledd amlasiantaethol asesu risg (MARAC)",
	"operation_encompass":      "Hysbysiad Ymgyrch Encompass i'r ysgol",
	"return_home_interview":    "Cyfweliad dychwelyd adref ar ôl cyfnod ar goll",
	"exploitation_screening":   "Sgrinio risg camfanteisio a phanel MACE",
	"prevent_referral":         "Atgyfeiriad Prevent (panel Channel)",
	"inform_allocated_worker":  "Trosglwyddo i weithiwr dynodedig yr achos agored",
}

// ConcernCategories lists the intake API's concern categories (every value
// of intakev1.ConcernCategory except UNSPECIFIED) in enum order. It is the
// vocabulary of the concerns list, the concern.<CATEGORY> variables and the
// keys of history.by_category_12m.
var ConcernCategories = func() []string {
	out := make([]string, 0, len(intakev1.ConcernCategory_name))
	for n := int32(1); ; n++ {
		name, ok := intakev1.ConcernCategory_name[n]
		if !ok {
			return out
		}
		out = append(out, name)
	}
}()

// DASHGrades are the values of risk.dash; "" means not given.
var DASHGrades = []string{"", "STANDARD", "MEDIUM", "HIGH", "NOT_ASSESSED"}

// ConsentStatuses are the values of consent.status; "" means not given.
var ConsentStatuses = []string{"", "GIVEN", "REFUSED", "NOT_SOUGHT"}

// AgencyKinds are the values of referrer.kind: the kinds of agency a client
// credential may belong to. It mirrors pkg/auth.Kinds (a test keeps them in
// step) without importing pkg/auth, which would pull a database driver into
// this pure package.
var AgencyKinds = []string{"police", "health", "education", "local-authority", "probation", "housing", "youth-justice", "third-sector", "hub"}

// levelSpellings are the values of history.previous_level and the keys of
// history.by_level_12m.
var levelSpellings = []string{"", "1", "2", "3a", "3b", "4"}

// categoryIndex maps a category name to its bit in a concern set.
var categoryIndex = func() map[string]int {
	m := make(map[string]int, len(ConcernCategories))
	for i, c := range ConcernCategories {
		m[c] = i
	}
	return m
}()

func isCategory(s string) bool { _, ok := categoryIndex[s]; return ok }

// oneOf formats allowed values for an error message, showing "" as (empty).
func oneOf(values []string) string {
	shown := make([]string, 0, len(values))
	for _, v := range values {
		if v == "" {
			shown = append(shown, `""`)
			continue
		}
		shown = append(shown, v)
	}
	return strings.Join(shown, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
