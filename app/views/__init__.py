"""Views: functions that take data and a key prefix and only draw (one concept per module).

Figure builders are pure (arrays in, ``go.Figure`` out); ``visualize_*`` functions put a view on the
page under a key prefix, so one view can appear twice on a page.
"""
