package console

// messages is the console's message catalogue: every string a person reads, in English
// (messages_en.go) and Welsh (messages_cy.go), one file per language so a translator works
// in one file; the partner view's strings are in messages_partner_en.go and _cy.go. A test
// checks both languages have every key and the same format verbs. Enum values are keyed
// "<prefix>.<ENUM_NAME>".
var messages = map[string]map[string]string{
	"en": catalogue(messagesEN, partnerMessagesEN, caseMessagesEN, contactMessagesEN, recordsMessagesEN, qualityMessagesEN, allocationMessagesEN),
	"cy": catalogue(messagesCY, partnerMessagesCY, caseMessagesCY, contactMessagesCY, recordsMessagesCY, qualityMessagesCY, allocationMessagesCY),
}

// catalogue joins a language's message files into one map; a key in an earlier file wins.
func catalogue(files ...map[string]string) map[string]string {
	out := map[string]string{}
	for i := len(files) - 1; i >= 0; i-- {
		for k, v := range files[i] {
			out[k] = v
		}
	}
	return out
}
