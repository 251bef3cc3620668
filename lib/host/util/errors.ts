// Errors with stable codes: misuse of the host API throws HostError; routing failures reject with StanzaError.
// Conditions per RFC 6120 §8.3.3 (stanza error conditions).

export type HostErrorCode =
  | 'HOST_ERR_CONFIG_INVALID'
  | 'HOST_ERR_CONFIG_UNREADABLE'
  | 'HOST_ERR_MODULE_UNKNOWN'
  | 'HOST_ERR_MODULE_DEPENDENCY'
  | 'HOST_ERR_MODULE_LOAD'
  | 'HOST_ERR_OPTION_UNKNOWN'
  | 'HOST_ERR_OPTION_INVALID'
  | 'HOST_ERR_PROVIDES_UNKNOWN'
  | 'HOST_ERR_HTTP_PATH_TAKEN'
  | 'HOST_ERR_USER_EXISTS'
  | 'HOST_ERR_USER_UNKNOWN'
  | 'HOST_ERR_JID_INVALID'
  | 'HOST_ERR_PASSWORD_INVALID'
  | 'HOST_ERR_HOST_UNKNOWN'
  | 'HOST_ERR_PORT_IN_USE'
  | 'HOST_ERR_DATA_DIR'
  | 'HOST_ERR_TLS'
  | 'HOST_ERR_TOKEN_INVALID'
  | 'HOST_ERR_TOKEN_LIMIT';

export class HostError extends Error {
  readonly code: HostErrorCode;
  constructor(code: HostErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HostError';
    this.code = code;
  }
}

export type StanzaErrorCondition =
  | 'bad-request'
  | 'conflict'
  | 'feature-not-implemented'
  | 'forbidden'
  | 'internal-server-error'
  | 'item-not-found'
  | 'jid-malformed'
  | 'not-acceptable'
  | 'not-allowed'
  | 'not-authorized'
  | 'policy-violation'
  | 'recipient-unavailable'
  | 'registration-required'
  | 'remote-server-not-found'
  | 'remote-server-timeout'
  | 'resource-constraint'
  | 'service-unavailable'
  | 'undefined-condition';

/** Error types per RFC 6120 §8.3.2 for each condition (the usual ones). */
const ERROR_TYPES: Record<StanzaErrorCondition, 'auth' | 'cancel' | 'modify' | 'wait'> = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'undefined-condition': 'cancel',
};

export class StanzaError extends Error {
  readonly condition: StanzaErrorCondition;
  readonly type: 'auth' | 'cancel' | 'modify' | 'wait';
  readonly text: string | undefined;
  /** `type`: the condition's usual one unless given (RFC 6120 §8.3.3.17: a failed negotiation is remote-server-timeout of type cancel). */
  constructor(condition: StanzaErrorCondition, text?: string, type?: StanzaError['type']) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StanzaError';
    this.condition = condition;
    this.type = type ?? ERROR_TYPES[condition];
    this.text = text;
  }
}
