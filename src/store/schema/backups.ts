/** Schema for backups. Part of migration list in ../migrations.ts; unreleased, so still editable. */
export const BACKUP_SCHEMA = `
  SELECT 1;
`;
