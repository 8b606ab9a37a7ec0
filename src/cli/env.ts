/** Environment variables: read by cli/ only and passed down to what needs one (URLs, the vault key). */
export type Env = Readonly<Record<string, string | undefined>>;
