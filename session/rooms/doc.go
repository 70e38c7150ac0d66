// Package rooms is lanmsg's message bus and store: an embedded NATS server
// (or an existing deployment, Config.URL) with JetStream on file storage
// in the server's data dir. A room is a subject and its history a stream
// with bounds; a direct message waits in a stream, keyed by the
// recipient's key, until a session of that key takes it.
//
// It knows nothing of frames or sessions: package session relays what a
// room's one subscription hands over to its members. The subjects, the
// streams and how linked sites source each other's rooms are specified in
// PROTOCOL.md ("Rooms, history and direct messages").
package rooms
