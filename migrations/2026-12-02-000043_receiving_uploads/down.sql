DROP INDEX imports_receiving_idx;
