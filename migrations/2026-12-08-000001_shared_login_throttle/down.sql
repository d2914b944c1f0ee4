DROP TABLE login_throttle_known;
DROP TABLE login_throttle_address_failures;
DROP TABLE login_throttle_accounts;
