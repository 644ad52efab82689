"""Time bank (时间银行): volunteers and their profiles, pairing with elders (小老助老), and the
double-entry hours ledger (earn, spend, donate, expire)."""
