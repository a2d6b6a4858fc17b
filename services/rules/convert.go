package rules

import (
	"strings"

	"github.com/mash-hub/mash/services/rules/pack"

	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
)

var levelToProto = map[pack.Level]rulesv1.Level{
	pack.Level1: rulesv1.Level_LEVEL_1, pack.Level2: rulesv1.Level_LEVEL_2, pack.Level3a: rulesv1.Level_LEVEL_3A,
	pack.Level3b: rulesv1.Level_LEVEL_3B, pack.Level4: rulesv1.Level_LEVEL_4,
}

var ragToProto = map[pack.RAG]rulesv1.Rag{
	pack.RAGNone: rulesv1.Rag_RAG_NONE, pack.RAGGreen: rulesv1.Rag_RAG_GREEN, pack.RAGAmber: rulesv1.Rag_RAG_AMBER, pack.RAGRed: rulesv1.Rag_RAG_RED,
}

func levelFromProto(l rulesv1.Level) (pack.Level, bool) {
	for k, v := range levelToProto {
		if v == l {
			return k, true
		}
	}
	return pack.LevelNone, false
}

func ragFromProto(r rulesv1.Rag) (pack.RAG, bool) {
	for k, v := range ragToProto {
		if v == r {
			return k, true
		}
	}
	return pack.RAGNone, false
}

// outcomeToProto converts the engine's outcome at the API and event boundary.
func outcomeToProto(o pack.Outcome) *rulesv1.Outcome {
	p := &rulesv1.Outcome{
		Level:          levelToProto[o.Level],
		Rag:            ragToProto[o.RAG],
		Pathway:        o.Pathway,
		Pathways:       o.Pathways,
		Agencies:       o.Agencies,
		DefaultApplied: o.DefaultApplied,
		Reason:         o.Reason,
		ReasonCy:       o.ReasonCy,
		PackVersion:    o.PackVersion,
	}
	for _, f := range o.Fired {
		p.Fired = append(p.Fired, &rulesv1.FiredRule{Id: f.ID, Description: f.Description, Reason: f.Reason,
			DescriptionCy: f.DescriptionCy, ReasonCy: f.ReasonCy, Level: levelToProto[f.Level], Rag: ragToProto[f.RAG], Pathway: f.Pathway, Agencies: f.Agencies})
	}
	for _, e := range o.Errors {
		p.EvaluationErrors = append(p.EvaluationErrors, e.Rule+": "+e.Message)
	}
	return p
}

// levelName and ragName are how levels and RAG are stored and compared in SQL.
func levelName(l rulesv1.Level) string {
	if k, ok := levelFromProto(l); ok {
		return k.String()
	}
	return ""
}

func ragName(r rulesv1.Rag) string {
	if k, ok := ragFromProto(r); ok {
		return k.String()
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "RAG_"))
}
