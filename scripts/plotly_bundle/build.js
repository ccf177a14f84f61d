// Builds ../../static/vendor/plotly.min.js from entry.js with the pinned plotly.js (package-lock.json),
// the way plotly.js builds its own bundles (its esbuild-config.js). Run: make plotly-bundle
'use strict';
const path = require('path');
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
const version = require('plotly.js/package.json').version;

const TRACES = ['scatter', 'bar', 'box', 'heatmap', 'scattergl'];
const banner =
    `/** plotly.js v${version} (MIT license, Copyright Plotly, Inc.), custom bundle: traces ${TRACES.join(',')}. ` +
    'Built by scripts/plotly_bundle (make plotly-bundle). */';

esbuild
    .build({
        entryPoints: [path.join(__dirname, 'entry.js')],
        outfile: path.join(__dirname, '..', '..', 'static', 'vendor', 'plotly.min.js'),
        format: 'iife',
        globalName: 'Plotly',
        bundle: true,
        minify: true,
        sourcemap: false,
        legalComments: 'eof',
        banner: { js: banner },
        plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
        alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
        define: { global: 'window', 'define.amd': 'false' },
        target: 'es2016',
        logLevel: 'info',
    })
    .catch(() => process.exit(1));
