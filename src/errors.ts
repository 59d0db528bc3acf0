/** The domain errors; the API's one error middleware maps each to its HTTP status. */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
export class InputError extends DomainError {
  constructor(message: string) {
    super(400, 'invalid_input', message);
  }
}
export class AuthenticationError extends DomainError {
  constructor(message = 'authentication required') {
    super(401, 'unauthenticated', message);
  }
}
export class NotAllowedError extends DomainError {
  constructor(message = 'not allowed') {
    super(403, 'forbidden', message);
  }
}
export class NotFoundError extends DomainError {
  constructor(message: string) {
    super(404, 'not_found', message);
  }
}
export class ConflictError extends DomainError {
  constructor(message: string) {
    super(409, 'conflict', message);
  }
}
/** 429: over a rate limit; `retryAfter` (seconds) becomes the `Retry-After` header. */
export class ThrottledError extends DomainError {
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super(429, 'throttled', message);
  }
}
