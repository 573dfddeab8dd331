<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.16-Białowieża" styleCategories="Symbology">
  <renderer-v2 type="RuleRenderer" forceraster="0" enableorderby="0" symbollevels="0" referencescale="-1">
    <rules key="{00000000-0000-4000-8000-000000000000}">
      <rule key="{00000000-0000-4000-8000-000000000001}" symbol="0" label="Fence: new" filter="&quot;class&quot; = 'fence' AND &quot;status&quot; = 'new'"/>
      <rule key="{00000000-0000-4000-8000-000000000002}" symbol="1" label="Fence: upgraded" filter="&quot;class&quot; = 'fence' AND &quot;status&quot; = 'upgraded'"/>
      <rule key="{00000000-0000-4000-8000-000000000003}" symbol="2" label="Fence: existing" filter="&quot;class&quot; = 'fence' AND &quot;status&quot; = 'existing'"/>
      <rule key="{00000000-0000-4000-8000-000000000004}" symbol="3" label="Fence: removed" filter="&quot;class&quot; = 'fence' AND &quot;status&quot; = 'removed'"/>
      <rule key="{00000000-0000-4000-8000-000000000005}" symbol="4" label="Patrol lane: new" filter="&quot;class&quot; = 'patrol_lane' AND &quot;status&quot; = 'new'"/>
      <rule key="{00000000-0000-4000-8000-000000000006}" symbol="5" label="Patrol lane: upgraded" filter="&quot;class&quot; = 'patrol_lane' AND &quot;status&quot; = 'upgraded'"/>
      <rule key="{00000000-0000-4000-8000-000000000007}" symbol="6" label="Patrol lane: existing" filter="&quot;class&quot; = 'patrol_lane' AND &quot;status&quot; = 'existing'"/>
      <rule key="{00000000-0000-4000-8000-000000000008}" symbol="7" label="Patrol lane: removed" filter="&quot;class&quot; = 'patrol_lane' AND &quot;status&quot; = 'removed'"/>
      <rule key="{00000000-0000-4000-8000-000000000009}" symbol="8" label="Watchtower: new" filter="&quot;class&quot; = 'watchtower' AND &quot;status&quot; = 'new'"/>
      <rule key="{00000000-0000-4000-8000-000000000010}" symbol="9" label="Watchtower: upgraded" filter="&quot;class&quot; = 'watchtower' AND &quot;status&quot; = 'upgraded'"/>
      <rule key="{00000000-0000-4000-8000-000000000011}" symbol="10" label="Watchtower: existing" filter="&quot;class&quot; = 'watchtower' AND &quot;status&quot; = 'existing'"/>
      <rule key="{00000000-0000-4000-8000-000000000012}" symbol="11" label="Watchtower: removed" filter="&quot;class&quot; = 'watchtower' AND &quot;status&quot; = 'removed'"/>
    </rules>
    <symbols>
    <symbol type="line" name="0" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="227,26,28,255"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="0.9"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="1" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="255,255,255,255"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="1.3"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="227,26,28,255"/>
          <Option type="QString" name="line_style" value="dash"/>
          <Option type="QString" name="line_width" value="0.7"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="2" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="150,60,60,200"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="0.4"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="3" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="120,120,120,200"/>
          <Option type="QString" name="line_style" value="dot"/>
          <Option type="QString" name="line_width" value="0.4"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="4" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="255,127,0,255"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="1.6"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="5" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="255,127,0,255"/>
          <Option type="QString" name="line_style" value="dash"/>
          <Option type="QString" name="line_width" value="1.2"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="6" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="190,130,70,200"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="0.8"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="line" name="7" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="120,120,120,200"/>
          <Option type="QString" name="line_style" value="dot"/>
          <Option type="QString" name="line_width" value="0.8"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="marker" name="8" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="angle" value="0"/>
          <Option type="QString" name="cap_style" value="square"/>
          <Option type="QString" name="color" value="227,26,28,255"/>
          <Option type="QString" name="horizontal_anchor_point" value="1"/>
          <Option type="QString" name="joinstyle" value="bevel"/>
          <Option type="QString" name="name" value="triangle"/>
          <Option type="QString" name="offset" value="0,0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="outline_color" value="35,35,35,255"/>
          <Option type="QString" name="outline_style" value="solid"/>
          <Option type="QString" name="outline_width" value="0.3"/>
          <Option type="QString" name="outline_width_unit" value="MM"/>
          <Option type="QString" name="scale_method" value="diameter"/>
          <Option type="QString" name="size" value="3.4"/>
          <Option type="QString" name="size_unit" value="MM"/>
          <Option type="QString" name="vertical_anchor_point" value="1"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="marker" name="9" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="angle" value="0"/>
          <Option type="QString" name="cap_style" value="square"/>
          <Option type="QString" name="color" value="255,255,255,255"/>
          <Option type="QString" name="horizontal_anchor_point" value="1"/>
          <Option type="QString" name="joinstyle" value="bevel"/>
          <Option type="QString" name="name" value="triangle"/>
          <Option type="QString" name="offset" value="0,0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="outline_color" value="227,26,28,255"/>
          <Option type="QString" name="outline_style" value="solid"/>
          <Option type="QString" name="outline_width" value="0.3"/>
          <Option type="QString" name="outline_width_unit" value="MM"/>
          <Option type="QString" name="scale_method" value="diameter"/>
          <Option type="QString" name="size" value="3.4"/>
          <Option type="QString" name="size_unit" value="MM"/>
          <Option type="QString" name="vertical_anchor_point" value="1"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="marker" name="10" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="angle" value="0"/>
          <Option type="QString" name="cap_style" value="square"/>
          <Option type="QString" name="color" value="110,110,110,255"/>
          <Option type="QString" name="horizontal_anchor_point" value="1"/>
          <Option type="QString" name="joinstyle" value="bevel"/>
          <Option type="QString" name="name" value="triangle"/>
          <Option type="QString" name="offset" value="0,0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="outline_color" value="35,35,35,255"/>
          <Option type="QString" name="outline_style" value="solid"/>
          <Option type="QString" name="outline_width" value="0.3"/>
          <Option type="QString" name="outline_width_unit" value="MM"/>
          <Option type="QString" name="scale_method" value="diameter"/>
          <Option type="QString" name="size" value="2.6"/>
          <Option type="QString" name="size_unit" value="MM"/>
          <Option type="QString" name="vertical_anchor_point" value="1"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="marker" name="11" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleMarker" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="angle" value="0"/>
          <Option type="QString" name="cap_style" value="square"/>
          <Option type="QString" name="color" value="255,255,255,0"/>
          <Option type="QString" name="horizontal_anchor_point" value="1"/>
          <Option type="QString" name="joinstyle" value="bevel"/>
          <Option type="QString" name="name" value="triangle"/>
          <Option type="QString" name="offset" value="0,0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="outline_color" value="110,110,110,255"/>
          <Option type="QString" name="outline_style" value="solid"/>
          <Option type="QString" name="outline_width" value="0.3"/>
          <Option type="QString" name="outline_width_unit" value="MM"/>
          <Option type="QString" name="scale_method" value="diameter"/>
          <Option type="QString" name="size" value="2.6"/>
          <Option type="QString" name="size_unit" value="MM"/>
          <Option type="QString" name="vertical_anchor_point" value="1"/>
        </Option>
      </layer>
    </symbol>
    </symbols>
  </renderer-v2>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
</qgis>
