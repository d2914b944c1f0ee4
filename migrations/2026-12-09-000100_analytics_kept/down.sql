DROP TABLE analytics_kept_segments;
DROP TABLE analytics_kept_lines;
DROP TABLE analytics_kept_rankings;
