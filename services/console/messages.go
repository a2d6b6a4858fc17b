package console

// messages is the console's message catalogue: every string a person reads, in English
// (messages_en.go) and Welsh (messages_cy.go), one file per language so a translator works
// in one file. A test checks both languages have every key and the same format verbs. Enum
// values are keyed "<prefix>.<ENUM_NAME>".
var messages = map[string]map[string]string{
	"en": messagesEN,
	"cy": messagesCY,
}
