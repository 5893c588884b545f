// The SDK's errors. Every non-2xx answer of the server carries
// `{"error": {"code", "message", "details"?, "retry_after"?}}`; it becomes an `ApiError` whose
// subclass names the status, so `catch (e) { if (e instanceof ForbiddenError) ... }` works.

/** An error answer of the server. */
export class ApiError extends Error {
  override readonly name: string = "ApiError";

  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The server's error code, e.g. `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`. */
    readonly code: string,
    message: string,
    /** Structured details, when the server gives them. */
    readonly details?: unknown,
    /** Seconds to wait before retrying (429, some 503). */
    readonly retryAfter?: number,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

/** 400: the request is malformed (bad JSON, bad parameter, SQL syntax). */
export class BadRequestError extends ApiError {
  override readonly name = "BadRequestError";
}
/** 401: no credentials, or refused ones (wrong password, expired or revoked token). */
export class UnauthorizedError extends ApiError {
  override readonly name = "UnauthorizedError";
}
/** 403: the credentials are valid but lack the permission. */
export class ForbiddenError extends ApiError {
  override readonly name = "ForbiddenError";
}
/** 404: no such resource. */
export class NotFoundError extends ApiError {
  override readonly name = "NotFoundError";
}
/** 409: the resource exists already or is in use. */
export class ConflictError extends ApiError {
  override readonly name = "ConflictError";
}
/** 422: well-formed but invalid (a constraint, a value out of range). */
export class ValidationError extends ApiError {
  override readonly name = "ValidationError";
}
/** 429: over a rate limit; see `retryAfter`. */
export class RateLimitError extends ApiError {
  override readonly name = "RateLimitError";
}
/** 5xx: the server failed or is unavailable. */
export class ServerError extends ApiError {
  override readonly name = "ServerError";
}

const BY_STATUS: Record<number, typeof ApiError> = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  422: ValidationError,
  429: RateLimitError,
};

/** Builds the error for a non-2xx answer; `body` is the parsed JSON, or the raw text. */
export function apiErrorFrom(status: number, body: unknown, retryAfterHeader?: string | null): ApiError {
  const error =
    typeof body === "object" && body !== null && "error" in body
      ? (body as { error: unknown }).error
      : undefined;
  const fields = typeof error === "object" && error !== null ? (error as Record<string, unknown>) : {};
  const code = typeof fields.code === "string" ? fields.code : `HTTP_${status}`;
  const message =
    typeof fields.message === "string"
      ? fields.message
      : typeof body === "string" && body.length > 0
        ? body
        : "no error body";
  const retry =
    typeof fields.retry_after === "number"
      ? fields.retry_after
      : retryAfterHeader != null && retryAfterHeader !== ""
        ? Number(retryAfterHeader)
        : undefined;
  const Kind = BY_STATUS[status] ?? (status >= 500 ? ServerError : ApiError);
  return new Kind(status, code, message, fields.details, Number.isFinite(retry) ? retry : undefined);
}
