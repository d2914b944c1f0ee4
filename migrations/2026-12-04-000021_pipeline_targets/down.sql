DROP TABLE pipeline_targets;
