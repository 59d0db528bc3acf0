/** Schema for the web UI. Part of migration list in ../migrations.ts; unreleased, so still editable. */
export const WEB_SCHEMA = `
  SELECT 1;
`;
