DROP FUNCTION rapport_settled_horizon();
