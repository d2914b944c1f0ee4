DROP TABLE purchase_refunds;
DROP TABLE purchases;
