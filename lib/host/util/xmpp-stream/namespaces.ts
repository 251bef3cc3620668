// XML namespaces of client streams (RFC 6120 §4.8, §5, §6, §7, §8; RFC 3921 §3; RFC 6121 §2.6.1).

export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const NS_CLIENT = 'jabber:client';
export const NS_STREAMS_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams';
export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
export const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
export const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session';
export const NS_ROSTER_VER = 'urn:xmpp:features:rosterver';
/** RFC 7395 §3.3.1: `<open/>` and `<close/>` on a WebSocket. */
export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
