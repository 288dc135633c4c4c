package routing

import (
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Pub/Sub's limits, and the bounds this package keeps under them, in
// bytes. Every message Router publishes is checked against them before it
// is published: a message Pub/Sub would refuse is never sent, since the
// refusal would come back on every delivery until retention ends.
const (
	// MaxPublishBytes is Pub/Sub's limit on one publish request (10 MB):
	// the topic's name and the message, its data, attributes and ordering
	// key included.
	MaxPublishBytes = int(pubsub.MaxPublishRequestBytes)
	// MaxAttributes is how many attributes Pub/Sub lets a message carry.
	MaxAttributes = 100
	// MaxAttributeValueBytes is Pub/Sub's limit on one attribute's value.
	MaxAttributeValueBytes = 1024

	// AttributeReserve is the part of MaxPublishBytes kept for what is not
	// the document: Pub/Sub's own limits hold a message's attributes to
	// 100 × (256 + 1024) bytes, its ordering key to 1 KiB and a topic name
	// to a few hundred bytes, about 131 kB in all with their framing.
	AttributeReserve = 200_000
	// MaxDocumentBytes is the largest document the pipeline carries as
	// is: a larger one, valid or not, goes to the invalid topic, and
	// ValidateHTTP refuses it with 413.
	MaxDocumentBytes = MaxPublishBytes - AttributeReserve
	// MaxReportBytes bounds the JSON of a report on the invalid topic, so
	// that with the original attributes it always fits in a message.
	MaxReportBytes = MaxDocumentBytes

	// MaxReportErrors is how many errors a report (or a 422 answer)
	// lists; error_count says how many there were.
	MaxReportErrors = 100
	// MaxErrorFieldBytes bounds the path and the message of each error
	// listed: a key of a megabyte makes a pointer of a megabyte.
	MaxErrorFieldBytes = 1024
)

// publishLimit is the largest message the client publishes to topic: it
// reserves the topic's name and 5 bytes of framing in the request, as the
// client's own bundler does (Publisher.initBundler), so a message this
// size or smaller is never refused with "item size exceeds bundle byte
// limit".
func publishLimit(topic string) int {
	return MaxPublishBytes - (1 + protowire.SizeVarint(uint64(len(topic))) + len(topic)) - 5
}

// checkFits says why m cannot be published to topic, or nil when it can.
// Sizes are counted as the client counts them: the encoded message.
func checkFits(topic string, m *pubsub.Message) error {
	if n := len(m.Attributes); n > MaxAttributes {
		return fmt.Errorf("it would carry %d attributes; Pub/Sub allows %d", n, MaxAttributes)
	}
	size := proto.Size(&pubsubpb.PubsubMessage{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey})
	if limit := publishLimit(topic); size > limit {
		return fmt.Errorf("it would be a message of %d bytes; Pub/Sub takes at most %d", size, limit)
	}
	return nil
}
