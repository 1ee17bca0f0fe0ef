// Shapes shared by the auth clients, the token manager and the token store.

/** What the device keeps on flash between boots. */
export interface StoredTokens {
  accessToken: string;
  refreshToken: string;
  /** Wall-clock ms since the epoch when the access token expires. */
  expiresAt: number;
  tokenType: string;
  /** Wall-clock ms when the token was obtained. */
  obtainedAt: number;
  deviceId?: string;
}

/** The result of reading the store: a usable record, or a coded reason why there is none. */
export type StoreLoadResult =
  | { state: 'ok'; tokens: StoredTokens; /** true when the newest generation was bad and an older one was used */ recovered: boolean; warning?: string }
  | { state: 'empty'; path: string }
  | { state: 'corrupt'; path: string; reason: string }
  | { state: 'foreign'; path: string; reason: string };

/** Persistence as the token manager sees it (TokenStore implements it; tests may fake it). */
export interface TokenPersistence {
  load(): Promise<StoreLoadResult>;
  /** Durably stores `tokens`; resolves { written: false } when the content did not change. */
  save(tokens: StoredTokens): Promise<{ written: boolean }>;
  /** Removes every generation. */
  clear(): Promise<void>;
  readonly path: string;
}

/** A token as the Clova /token endpoint returns it (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  expires_in: number;
  token_type: string;
  scope?: string;
}
