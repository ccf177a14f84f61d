'use strict';
// plotly.js with only the trace types the campaign manager draws (metrics/charts.py): the full bundle
// is 4.8 MB, and parsing it was most of a dashboard's first load. The `scatter` trace is in the core.
// Keep TRACES in build.js in step with this list (the banner names them; tests/metrics/test_views.py
// checks that every trace type charts.py emits is in it).
var Plotly = require('plotly.js/lib/core');
Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/box'),
    require('plotly.js/lib/heatmap'),
    require('plotly.js/lib/scattergl'),
]);
module.exports = Plotly;
