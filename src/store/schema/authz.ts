/** Schema for authz publishing. Part of migration list in ../migrations.ts; unreleased, so still editable. */
export const AUTHZ_SCHEMA = `
  SELECT 1;
`;
