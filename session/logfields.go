package session

// Log field names. Scripts and lanmsg's own tools (lanmsg-load, the tests)
// read these from the JSON log on stderr, so they are constants, used by
// every log line that carries them; the README lists the lines they appear in.
const (
	FieldSession   = "session"    // a server session's number
	FieldPeer      = "peer"       // a client's address, HOST:PORT
	FieldActive    = "active"     // sessions open now
	FieldReason    = "reason"     // why a session ended
	FieldMessages  = "messages"   // messages carried
	FieldBytes     = "bytes"      // bytes carried, or held
	FieldHeldBytes = "held_bytes" // bytes a session held when it was shed
	FieldDuration  = "duration"   // how long a session lasted
	FieldAddr      = "addr"       // an address lanmsg listens on or connects to
	FieldDebugAddr = "debug_addr" // the debug endpoint's address
	FieldLimit     = "limit"      // the limit a refusal hit
	FieldRefused   = "refused_since_last_log"
	FieldName      = "name"       // an instance or chat name
	FieldServer    = "server"     // the server a client talks to, by name or address
	FieldClientKey = "client_key" // a client's key fingerprint
	FieldKey       = "key"        // a server's key fingerprint
	FieldVersion   = "version"    // an extension version
)
